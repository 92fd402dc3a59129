// flowhook console: small progressive enhancements. Every page works without this file
// except the live parts (transcript updates and Try it), which need it.
"use strict";

(function () {
  // Confirm destructive forms.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // A form sent from this page: the page is about to be replaced by the answer, and a
  // reload now would drop the submission.
  let submitting = false;
  document.addEventListener("submit", (event) => {
    if (!event.defaultPrevented) submitting = true;
  });

  // Whether a reload would lose something: a form being sent, or typed into.
  function unsaved() {
    if (submitting) return true;
    const fields = document.querySelectorAll("form textarea, form input:not([type=hidden])");
    return [...fields].some((field) => field.value !== field.defaultValue);
  }

  // Copy buttons: data-copy="text" or data-copy-from="element id".
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy], [data-copy-from]");
    if (!button) return;
    const source = button.dataset.copyFrom ? document.getElementById(button.dataset.copyFrom) : null;
    const text = source ? source.textContent.trim() : button.dataset.copy;
    try {
      await navigator.clipboard.writeText(text);
      flash(button, "Copied");
    } catch (_err) {
      if (source) {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
      flash(button, "Press Ctrl+C");
    }
  });

  function flash(button, text) {
    const before = button.textContent;
    button.textContent = text;
    setTimeout(() => { button.textContent = before; }, 1500);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  const WHO = { user: "User", bot: "Bot", agent: "Agent", notify: "Notification" };
  const when = (ts) => new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";

  function bubble(entry) {
    const text = entry.text !== null && entry.text !== undefined
      ? el("p", { class: "text" }, entry.text)
      : (entry.data === null ? el("p", { class: "text muted" }, "(masked)") : null);
    const data = entry.data && Object.keys(entry.data).length
      ? el("pre", { class: "data" }, JSON.stringify(entry.data, null, 2)) : null;
    return el("li", { class: `msg ${entry.source} ${entry.direction}`, "data-id": String(entry.id) },
      el("span", { class: "who" }, WHO[entry.source] || entry.source), text, data,
      el("time", { datetime: new Date(entry.at * 1000).toISOString() }, when(entry.at)));
  }

  function liveState(text, ok) {
    const state = document.getElementById("live-state");
    if (state) {
      state.textContent = text;
      state.classList.toggle("on", ok);
    }
  }

  // Follow a session: transcript entries (and, for Try it, deliveries) as they happen.
  function follow(url, handlers) {
    const source = new EventSource(url);
    source.addEventListener("open", () => liveState("live", true));
    source.addEventListener("error", () => liveState("reconnecting…", false));
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => handler(JSON.parse(event.data)));
    }
    return source;
  }

  function appendEntries(list, entries) {
    for (const entry of entries) {
      if (list.querySelector(`[data-id="${entry.id}"]`)) continue;
      list.append(bubble(entry));
    }
    const empty = document.getElementById("transcript-empty");
    if (empty && entries.length) empty.hidden = true;
    list.lastElementChild && list.lastElementChild.scrollIntoView({ block: "nearest" });
  }

  // The transcript page.
  const transcript = document.getElementById("transcript");
  if (transcript && transcript.dataset.stream) {
    follow(transcript.dataset.stream, {
      transcript: (entries) => appendEntries(transcript, entries),
      state: (state) => {
        const turns = document.getElementById("turns");
        if (state && turns) turns.textContent = String(state.turns);
        const handover = document.getElementById("handover-state");
        const now = state && state.handover ? "on" : "off";
        if (!handover || !state || handover.dataset.handover === now) return;
        // The page's controls follow the handover state: reload, unless the agent is
        // typing or sending (say, a reply right after taking over); then say so instead.
        if (!unsaved()) {
          window.location.reload();
          return;
        }
        handover.dataset.handover = now;
        const changed = document.getElementById("handover-changed");
        if (changed) changed.hidden = false;
      },
      copilot: (latest) => renderCopilot(latest),
    });
  }

  // The copilot's latest suggestions (shown during a handover when the endpoint has one).
  function renderCopilot(latest) {
    const list = document.getElementById("copilot-list");
    if (!list || !latest || !latest.at) return;
    const reply = document.getElementById("reply-text");
    document.getElementById("copilot-meta").textContent =
      `On the ${latest.from}'s latest message, ${when(latest.at)}`;
    list.replaceChildren(...latest.suggestions.map((s, i) => {
      const data = s.data && typeof s.data === "object" ? s.data : null;
      const kind = data && typeof data.kind === "string" ? el("span", { class: "badge muted" }, data.kind) : null;
      if (s.text === null || s.text === undefined) {
        return el("li", { class: "suggestion" }, kind, data ? el("pre", { class: "data" }, JSON.stringify(data, null, 2)) : null);
      }
      const id = `sg-${i + 1}`;
      const use = reply
        ? el("button", { type: "button", class: "btn small", "data-use-suggestion": id, "aria-describedby": id }, "Use in reply")
        : null;
      return el("li", { class: "suggestion" }, kind, el("p", { class: "text", id }, s.text), use);
    }));
  }

  // "Use in reply": a suggestion's text into the agent's reply box, ready to edit.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-use-suggestion]");
    const reply = document.getElementById("reply-text");
    if (!button || !reply) return;
    reply.value = document.getElementById(button.dataset.useSuggestion).textContent;
    reply.focus();
  });

  // Try it.
  const tryit = document.getElementById("tryit");
  if (tryit) setUpTryIt(tryit);

  function setUpTryIt(root) {
    const form = document.getElementById("chat-form");
    const log = document.getElementById("chat-log");
    const hooks = document.getElementById("hook-log");
    const error = document.getElementById("chat-error");
    const link = document.getElementById("open-transcript");
    let source = null;
    let following = "";

    const sessionId = () => form.elements.sessionId.value.trim();
    function updateLink() {
      link.href = `${root.dataset.transcript}?session=${encodeURIComponent(sessionId())}`;
    }
    updateLink();
    form.elements.sessionId.addEventListener("change", () => { updateLink(); followSession(); });

    function followSession() {
      const sid = sessionId();
      if (!sid || sid === following) return;
      following = sid;
      if (source) source.close();
      log.replaceChildren();
      hooks.replaceChildren();
      const url = `${root.dataset.events}?session=${encodeURIComponent(sid)}&after=0&deliveries=1`;
      source = follow(url, {
        transcript: (entries) => appendEntries(log, entries),
        deliveries: (items) => renderDeliveries(items),
      });
    }

    function renderDeliveries(items) {
      document.getElementById("hook-empty").hidden = items.length > 0;
      hooks.replaceChildren(...items.map((d) => {
        const code = d.lastStatusCode ? el("span", { class: `code c${Math.floor(d.lastStatusCode / 100)}` }, String(d.lastStatusCode)) : null;
        return el("li", { class: "hook", "data-delivery": d.id },
          el("div", { class: "hook-head" },
            el("span", { class: `badge ${d.status}` }, d.status), code,
            el("span", { class: "muted" }, ` ${d.attempts} attempt${d.attempts === 1 ? "" : "s"} · ${when(d.createdAt)}`),
            el("a", { href: `/console/deliveries/${encodeURIComponent(d.id)}` }, "details")),
          d.lastError ? el("p", { class: "error-text" }, d.lastError) : null,
          el("pre", { class: "json" }, JSON.stringify(d.payload, null, 2)));
      }));
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const body = { userId: form.elements.userId.value.trim(), sessionId: sessionId() };
      const text = form.elements.text.value;
      if (text) body.text = text;
      const rawData = form.elements.data.value.trim();
      if (rawData) {
        try { body.data = JSON.parse(rawData); } catch (err) { return showError(`data is not valid JSON: ${err.message}`); }
      }
      if (body.text === undefined && body.data === undefined) return showError("Type a message (or add data).");
      followSession();
      const headers = { "Content-Type": "application/json" };
      if (form.elements.apiKey && form.elements.apiKey.value) headers["X-Webhook-Key"] = form.elements.apiKey.value;
      let answer;
      try {
        answer = await fetch(root.dataset.ingress, { method: "POST", headers, body: JSON.stringify(body), credentials: "omit" });
      } catch (err) {
        return showError(`The endpoint could not be reached: ${err.message}`);
      }
      const payload = await answer.json().catch(() => null);
      if (!answer.ok) {
        const message = payload && payload.error ? `${answer.status}: ${payload.error.message}` : `HTTP ${answer.status}`;
        return showError(message);
      }
      form.elements.text.value = "";
      form.elements.text.focus();
      if (root.dataset.type === "rest" && payload) renderRestAnswer(payload);
    });

    function renderRestAnswer(payload) {
      document.getElementById("hook-empty").hidden = true;
      hooks.append(el("li", { class: "hook" },
        el("div", { class: "hook-head" }, el("span", { class: "badge delivered" }, "HTTP answer")),
        el("pre", { class: "json" }, JSON.stringify(payload, null, 2))));
    }

    function showError(message) {
      error.textContent = message;
      error.hidden = false;
    }
  }
})();
