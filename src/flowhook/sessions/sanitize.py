"""Input sanitization: harmful HTML taken out of what a user sends.

A user's text (and the strings in its data) may be shown by a web chat, an agent's
console or a transcript viewer as HTML. What could run there is removed: elements
that execute or embed (``<script>``, ``<iframe>``, ``<object>``, ...) with their
content, event-handler attributes (``onclick=...``) and ``javascript:``-like URLs.
Everything else, including ordinary text such as ``2 < 3 & 4 > 1`` and harmless
markup like ``<b>``, is kept as it was.

Each pass over the text uses a tag pattern that cannot backtrack (``[^<>]*``) and
one ``find`` per removed element for its end tag: linear in the text's length, and
the passes are bounded, so a huge or hostile input costs a few readings of it. Data
is walked without recursion, so deep nesting cannot exhaust the stack.
"""

from __future__ import annotations

import re
from typing import Any

# Elements removed together with everything up to their end tag (or, without one,
# to the end of the text: a browser would take the rest as their content).
_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "applet", "noscript", "template", "xml"}
)
# Elements removed as a tag (they have no content, or their content is harmless text).
_TAG_ONLY = frozenset(
    {"link", "meta", "base", "form", "frame", "frameset", "svg", "math", "param", "source"}
)
_TAG = re.compile(r"<\s*(/?)\s*([A-Za-z][A-Za-z0-9:-]*)([^<>]*)>")
_HANDLER = re.compile(r"""\s+on[A-Za-z]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
_URL_ATTR = re.compile(
    r"""\s+(href|src|action|formaction|xlink:href|srcdoc|style)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""",
    re.IGNORECASE,
)
_DANGEROUS_URL = re.compile(r"^\s*(javascript|vbscript|data\s*:\s*text/html)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x20]+")


# Removing a tag can join its neighbours into a new one (``<scr<script></script>ipt>``):
# passes repeat until nothing changes; input that still changes after this many passes
# is built to evade, and has every "<" escaped instead.
MAX_PASSES = 8


def sanitize_text(text: str) -> str:
    """``text`` without harmful HTML (unchanged when it has none)."""
    for _ in range(MAX_PASSES):
        if "<" not in text:
            return text
        clean = _one_pass(text)
        if clean == text:
            return text
        text = clean
    return text.replace("<", "&lt;")


def _one_pass(text: str) -> str:
    out: list[str] = []
    pos = 0
    lower: str | None = None
    while True:
        match = _TAG.search(text, pos)
        if match is None:
            out.append(text[pos:])
            break
        out.append(text[pos : match.start()])
        closing, name, attrs = match.group(1), match.group(2).lower(), match.group(3)
        pos = match.end()
        if name in _WITH_CONTENT:
            if closing:
                continue  # a stray end tag
            if lower is None:
                lower = text.lower()
            end = lower.find(f"</{name}", pos)
            if end < 0:
                break
            close = text.find(">", end)
            pos = len(text) if close < 0 else close + 1
        elif name in _TAG_ONLY:
            continue
        else:
            out.append(f"<{closing}{match.group(2)}{_clean_attributes(attrs)}>")
    return "".join(out)


def _clean_attributes(attrs: str) -> str:
    if not attrs.strip():
        return attrs
    attrs = _HANDLER.sub("", attrs)

    def url(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        value = match.group(2).strip("\"'")
        if name in ("srcdoc", "style") and (name == "srcdoc" or "expression(" in value.lower()):
            return ""
        # Browsers ignore control characters and spaces inside a scheme ("java\tscript:").
        return "" if _DANGEROUS_URL.match(_CONTROL.sub("", value)) else match.group(0)

    return _URL_ATTR.sub(url, attrs)


def sanitize_data(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with every string value (and key) sanitized."""
    root: dict[str, Any] = {}
    stack: list[tuple[Any, Any]] = [(data, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, value in items:
            if isinstance(value, dict):
                copy: Any = {}
                stack.append((value, copy))
            elif isinstance(value, list):
                copy = [None] * len(value)
                stack.append((value, copy))
            elif isinstance(value, str):
                copy = sanitize_text(value)
            else:
                copy = value
            if isinstance(target, dict):
                target[sanitize_text(key) if isinstance(key, str) else key] = copy
            else:
                target[key] = copy
    return root
