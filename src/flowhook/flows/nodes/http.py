"""``http``: call an API and store its JSON reply.

``method``, ``url``, ``headers``, ``query`` and ``body`` are templates; a
``body`` is sent as JSON. A reply with a 2xx status is stored under
``context[store]`` (parsed JSON, or the text when it is not JSON) and the flow
goes on at ``next``. A timeout, a connection failure or any other status goes
to ``error`` with ``context.httpError = {status, message}`` (the turn fails
without ``error``). ``timeout`` defaults to the engine's ``http_timeout``.

Flow files are trusted configuration: URLs are not restricted to public hosts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp

from flowhook.flows.errors import FlowRuntimeError
from flowhook.flows.fields import Target
from flowhook.flows.nodes.base import Node, ParseContext, optional_targets, target_id
from flowhook.flows.nodes.io import CallFailed, fail_or_branch, read_body, read_seconds
from flowhook.flows.run import TurnRun
from flowhook.flows.values import Constant, DictValue, Value

ERROR_KEY = "httpError"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class HttpNode(Node):
    type_name = "http"
    is_async = True

    __slots__ = (
        "body",
        "error",
        "error_id",
        "headers",
        "method",
        "next",
        "next_id",
        "query",
        "store",
        "timeout",
        "url",
    )

    def __init__(
        self,
        node_id: str,
        line: int,
        *,
        method: Value,
        url: Value,
        headers: Value | None,
        query: Value | None,
        body: Value | None,
        timeout: float | None,
        store: str | None,
        next: Target | None,
        error: Target | None,
    ) -> None:
        super().__init__(node_id, line)
        self.method = method
        self.url = url
        self.headers = headers
        self.query = query
        self.body = body
        self.timeout = timeout
        self.store = store
        self.next = next
        self.next_id = target_id(next)
        self.error = error
        self.error_id = target_id(error)

    @classmethod
    def parse(cls, ctx: ParseContext) -> HttpNode:
        fields = ctx.fields
        compiler = ctx.compiler
        method = fields.text("method", compiler) or Constant("GET")
        if isinstance(method, Constant) and str(method.value).upper() not in METHODS:
            fields.problem(f"unknown method '{method.value}'", "method")
        headers = fields.value("headers", compiler)
        if headers is not None and not isinstance(headers, DictValue):
            fields.problem("'headers' must be a mapping", "headers")
        query = fields.value("query", compiler)
        if query is not None and not isinstance(query, DictValue):
            fields.problem("'query' must be a mapping", "query")
        return cls(
            ctx.node_id,
            ctx.line,
            method=method,
            url=fields.text("url", compiler, required=True) or Constant(""),
            headers=headers,
            query=query,
            body=fields.value("body", compiler),
            timeout=read_seconds(fields, "timeout"),
            store=fields.context_key("store"),
            next=fields.target("next"),
            error=fields.target("error"),
        )

    def targets(self) -> Iterator[Target]:
        return optional_targets(self.next, self.error)

    def execute(self, run: TurnRun) -> str | None:
        raise FlowRuntimeError("the http node runs asynchronously")  # pragma: no cover

    async def execute_async(self, run: TurnRun) -> str | None:
        resources = run.resources
        if resources is None:
            raise FlowRuntimeError("http nodes need the engine's resources")
        scope = run.scope
        method = str(self.method.evaluate(scope)).strip().upper()
        if method not in METHODS:
            raise FlowRuntimeError(f"unknown HTTP method '{method}'")
        url = str(self.url.evaluate(scope)).strip()
        if not url.startswith(("http://", "https://")):
            raise FlowRuntimeError(f"the url must start with http:// or https://, got '{url}'")
        headers = _strings(self.headers.evaluate(scope)) if self.headers else {}
        query = _strings(self.query.evaluate(scope)) if self.query else None
        kwargs: dict[str, Any] = {"headers": headers, "params": query}
        if self.body is not None:
            kwargs["json"] = self.body.evaluate(scope)
        timeout = self.timeout or resources.http_timeout
        try:
            body = await _call(resources.http_session(), method, url, timeout, kwargs)
        except CallFailed as failure:
            if self.store is not None:
                run.context[self.store] = None
            return fail_or_branch(run, self.error_id, ERROR_KEY, f"{method} {url}", failure)
        if self.store is not None:
            run.context[self.store] = body
        return self.next_id


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, timeout: float, kwargs: dict[str, Any]
) -> Any:
    try:
        async with session.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs
        ) as response:
            body, _ = await read_body(response)
            if not 200 <= response.status < 300:
                raise CallFailed(f"status {response.status}", response.status)
            return body
    except TimeoutError:
        raise CallFailed(f"no reply within {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise CallFailed(f"{type(exc).__name__}: {exc}") from None


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise FlowRuntimeError("headers and query must be objects")
    return {str(key): "" if item is None else str(item) for key, item in value.items()}
