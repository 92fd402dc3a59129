"""``llm``: ask any OpenAI-compatible chat completions API and say or store the answer.

The request goes to ``{base_url}/chat/completions`` with ``model``, the
``system`` prompt, the last ``history`` messages of the conversation's
transcript (the user's inputs and the bot's texts, the current input
included) and, when given, ``prompt`` as a last user message. ``base_url``,
``model`` and ``api_key_env`` (the environment variable holding the API key)
default to the engine's settings; ``timeout`` too.

The answer is sent as an output, or stored under ``context[store]`` when
``store`` is given (``say: true`` does both). A timeout, an error reply or
an answer without text goes to ``error`` with ``context.llmError =
{status, message}`` (the turn fails without ``error``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp

from flowhook.flows.errors import FlowRuntimeError
from flowhook.flows.fields import Target
from flowhook.flows.nodes.base import Node, ParseContext, optional_targets, target_id
from flowhook.flows.nodes.io import CallFailed, fail_or_branch, read_body, read_seconds
from flowhook.flows.resources import DEFAULT_LLM_HISTORY
from flowhook.flows.run import TurnRun
from flowhook.flows.types import Output
from flowhook.flows.values import Value

ERROR_KEY = "llmError"


class LlmNode(Node):
    type_name = "llm"
    is_async = True
    uses_transcript = True

    __slots__ = (
        "api_key_env",
        "base_url",
        "error",
        "error_id",
        "history",
        "max_tokens",
        "model",
        "next",
        "next_id",
        "prompt",
        "say",
        "store",
        "system",
        "temperature",
        "timeout",
    )

    def __init__(
        self,
        node_id: str,
        line: int,
        *,
        system: Value | None,
        prompt: Value | None,
        history: int,
        base_url: str | None,
        model: str | None,
        api_key_env: str | None,
        temperature: float | None,
        max_tokens: int | None,
        timeout: float | None,
        store: str | None,
        say: bool,
        next: Target | None,
        error: Target | None,
    ) -> None:
        super().__init__(node_id, line)
        self.system = system
        self.prompt = prompt
        self.history = history
        self.base_url = base_url
        self.model = model
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.store = store
        self.say = say
        self.next = next
        self.next_id = target_id(next)
        self.error = error
        self.error_id = target_id(error)

    @classmethod
    def parse(cls, ctx: ParseContext) -> LlmNode:
        fields = ctx.fields
        compiler = ctx.compiler
        history = fields.integer("history")
        temperature = fields.raw("temperature")
        if temperature is not None and (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not 0 <= temperature <= 2
        ):
            fields.problem("'temperature' must be a number from 0 to 2", "temperature")
            temperature = None
        say = fields.raw("say")
        if say is not None and not isinstance(say, bool):
            fields.problem("'say' must be true or false", "say")
            say = None
        store = fields.context_key("store")
        base_url = fields.string("base_url")
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            fields.problem("'base_url' must start with http:// or https://", "base_url")
        return cls(
            ctx.node_id,
            ctx.line,
            system=fields.text("system", compiler),
            prompt=fields.text("prompt", compiler),
            history=DEFAULT_LLM_HISTORY if history is None else history,
            base_url=base_url,
            model=fields.string("model"),
            api_key_env=fields.string("api_key_env"),
            temperature=None if temperature is None else float(temperature),
            max_tokens=fields.integer("max_tokens", minimum=1),
            timeout=read_seconds(fields, "timeout"),
            store=store,
            say=store is None if say is None else say,
            next=fields.target("next"),
            error=fields.target("error"),
        )

    def targets(self) -> Iterator[Target]:
        return optional_targets(self.next, self.error)

    def execute(self, run: TurnRun) -> str | None:
        raise FlowRuntimeError("the llm node runs asynchronously")  # pragma: no cover

    def messages(self, run: TurnRun) -> list[dict[str, str]]:
        scope = run.scope
        messages: list[dict[str, str]] = []
        if self.system is not None:
            system = str(self.system.evaluate(scope))
            if system:
                messages.append({"role": "system", "content": system})
        transcript = run.transcript or []
        if self.history:
            messages.extend(dict(message) for message in transcript[-self.history :])
        elif self.prompt is None and run.turn.text:
            messages.append({"role": "user", "content": run.turn.text})
        if self.prompt is not None:
            messages.append({"role": "user", "content": str(self.prompt.evaluate(scope))})
        return messages

    async def execute_async(self, run: TurnRun) -> str | None:
        resources = run.resources
        if resources is None:
            raise FlowRuntimeError("llm nodes need the engine's resources")
        defaults = resources.llm
        base_url = self.base_url or defaults.base_url
        model = self.model or defaults.model
        if not base_url or not model:
            raise FlowRuntimeError(
                "the llm node needs a base_url and a model (in the node or the settings)"
            )
        payload: dict[str, Any] = {"model": model, "messages": self.messages(run)}
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        if self.max_tokens is not None:
            payload["max_tokens"] = self.max_tokens
        headers = {}
        api_key = resources.environ.get(self.api_key_env or defaults.api_key_env)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        url = base_url.rstrip("/") + "/chat/completions"
        timeout = self.timeout or defaults.timeout
        try:
            answer = await _complete(resources.llm_session(), url, payload, headers, timeout)
        except CallFailed as failure:
            return fail_or_branch(run, self.error_id, ERROR_KEY, f"llm call to {url}", failure)
        if self.store is not None:
            run.context[self.store] = answer
        if self.say:
            run.emit(Output(text=answer))
        return self.next_id


async def _complete(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    headers: dict[str, str],
    timeout: float,
) -> str:
    try:
        async with session.post(
            url, json=payload, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            body, raw = await read_body(response)
            if not 200 <= response.status < 300:
                detail = raw[:200].decode("utf-8", "replace")
                raise CallFailed(f"status {response.status}: {detail}", response.status)
    except TimeoutError:
        raise CallFailed(f"no reply within {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise CallFailed(f"{type(exc).__name__}: {exc}") from None
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise CallFailed("the reply has no choices[0].message.content", 200) from None
    if not isinstance(content, str) or not content.strip():
        raise CallFailed("the reply's answer is empty", 200)
    return content.strip()
