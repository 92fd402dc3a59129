"""One SSRF corpus against every outbound feature: webhooks and handover events (the
delivery transport), the http and llm nodes, translation and NLU connectors.

A target service listens on 127.0.0.1. Each corpus URL names it (or another internal
address) in one of the forms attackers use: loopback and ``localhost``, decimal, octal,
hex and short IPv4, IPv6 loopback, IPv4-mapped IPv6, link-local (cloud metadata),
private and shared ranges, unspecified, and a redirect from an allowed host to the
target. Every feature's policy allows only 127.0.0.2 (the redirector); every call must
be refused by the guard and the target must see no request at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from flowhook.delivery.transport import AiohttpTransport
from flowhook.delivery.types import WebhookTarget
from flowhook.endpoints.settings import EndpointSettings
from flowhook.flows import Engine, FlowRegistry
from flowhook.flows.resources import EngineResources, LlmDefaults
from flowhook.outbound_http import OutboundPolicy
from flowhook.sessions.pipeline import TurnPipeline

from ..flows.helpers import Conversation, make_input, write_flow

REDIRECTOR_CIDR = ("127.0.0.2/32",)
Handler = Callable[[web.Request], Awaitable[web.Response]]


@dataclass
class Services:
    target_port: int
    redirect_url: str
    hits: list[str] = field(default_factory=list)


async def _serve(handler: Handler, host: str) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    """The internal target on 127.0.0.1 and an allowed redirector on 127.0.0.2."""
    hits: list[str] = []

    async def target(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"secret": "internal"})

    target_runner, port = await _serve(target, "127.0.0.1")

    async def redirect(_request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{port}/metadata")

    redirect_runner, rport = await _serve(redirect, "127.0.0.2")
    try:
        yield Services(port, f"http://127.0.0.2:{rport}", hits)
    finally:
        await redirect_runner.cleanup()
        await target_runner.cleanup()


def corpus(port: int, redirect_url: str) -> dict[str, str]:
    return {
        "loopback": f"http://127.0.0.1:{port}",
        "localhost": f"http://localhost:{port}",
        "decimal": f"http://2130706433:{port}",
        "octal": f"http://0177.0.0.1:{port}",
        "hex": f"http://0x7f.0.0.1:{port}",
        "short": f"http://127.1:{port}",
        "ipv6 loopback": f"http://[::1]:{port}",
        "ipv4-mapped ipv6": f"http://[::ffff:127.0.0.1]:{port}",
        "ipv4-mapped ipv6 hex": f"http://[::ffff:7f00:1]:{port}",
        "unspecified": f"http://0.0.0.0:{port}",
        "link-local metadata": "http://169.254.169.254",
        "private 10/8": "http://10.0.0.1",
        "private 172.16/12": "http://172.16.0.1",
        "private 192.168/16": "http://192.168.0.1",
        "shared 100.64/10": "http://100.64.0.1",
        "ipv6 unique local": "http://[fc00::1]",
        "ipv6 link-local": "http://[fe80::1]",
        "redirect to loopback": redirect_url,
    }


def policy(feature: str) -> OutboundPolicy:
    return OutboundPolicy(feature, REDIRECTOR_CIDR)


Call = Callable[[str, Path], Awaitable[str]]


async def via_webhook(url: str, _tmp: Path) -> str:
    """Webhook deliveries and handover events share the delivery transport."""
    transport = AiohttpTransport(1.0, 2.0, guard=policy("webhook").guard())
    result = await transport.post(WebhookTarget(url=url + "/hook"), b"{}", {})
    await transport.close()
    return f"{result.status} {result.error}"


async def via_http_node(url: str, tmp: Path) -> str:
    write_flow(
        tmp,
        """
        nodes:
          call: {type: http, url: "{{ input.text }}/orders", timeout: 2, next: ok, error: bad}
          ok: {type: say, text: "reached"}
          bad: {type: say, text: "{{ context.httpError.message }}"}
        """,
    )
    resources = EngineResources(http_policy=policy("http node"))
    engine = Engine(FlowRegistry.load(tmp), resources=resources)
    try:
        return " ".join(str(text) for text in await Conversation(engine).texts(url))
    finally:
        await engine.aclose()


async def via_llm_node(url: str, tmp: Path) -> str:
    write_flow(
        tmp,
        """
        nodes:
          ask: {type: llm, timeout: 2, next: done, error: bad}
          done: {type: end}
          bad: {type: say, text: "{{ context.llmError.message }}"}
        """,
    )
    resources = EngineResources(
        llm=LlmDefaults(base_url=url, model="m"), environ={}, llm_policy=policy("llm node")
    )
    engine = Engine(FlowRegistry.load(tmp), resources=resources)
    try:
        return " ".join(str(text) for text in await Conversation(engine).texts("hi"))
    finally:
        await engine.aclose()


async def via_translation(url: str, _tmp: Path) -> str:
    pipeline = TurnPipeline(environ={"KEY": "k"}, translation_policy=policy("translation"))
    settings = EndpointSettings.model_validate(
        {
            "translation": {
                "provider": "deepl",
                "flowLocale": "en",
                "apiKeyEnv": "KEY",
                "baseUrl": url,
                "timeout": 2,
            }
        }
    )
    with capture_logs() as logs:
        turn = await pipeline.before(settings, {}, make_input("Hallo Welt"))
    await pipeline.aclose()
    assert turn.text == "Hallo Welt"  # untranslated: the internal answer never came back
    return " ".join(str(entry.get("reason")) for entry in logs)


async def via_nlu(url: str, _tmp: Path) -> str:
    pipeline = TurnPipeline(environ={}, nlu_policy=policy("nlu connector"))
    settings = EndpointSettings.model_validate(
        {"nluConnector": {"type": "rasa", "url": url + "/model/parse", "timeout": 2}}
    )
    with capture_logs() as logs:
        turn = await pipeline.before(settings, {}, make_input("open on saturday?"))
    await pipeline.aclose()
    assert turn.nlu is None
    return " ".join(str(entry.get("reason")) for entry in logs)


FEATURES: dict[str, Call] = {
    "webhook/handover": via_webhook,
    "http node": via_http_node,
    "llm node": via_llm_node,
    "translation": via_translation,
    "nlu connector": via_nlu,
}


@pytest.mark.parametrize("feature", list(FEATURES))
async def test_every_outbound_feature_refuses_the_corpus(
    feature: str, services: Services, tmp_path: Path
) -> None:
    """Each corpus URL is refused by the SSRF guard for this feature (the error says so),
    or rejected as no valid URL before any connection, and the internal target gets no
    request."""
    call = FEATURES[feature]
    failures = {}
    for name, url in corpus(services.target_port, services.redirect_url).items():
        outcome = await call(url, tmp_path)
        if name.startswith("redirect"):
            # Deliveries, NLU and translation never follow redirects (the 3xx is the
            # failure); the http and llm nodes follow them through the guard.
            follows = feature in ("http node", "llm node")
            ok = "SSRF guard" in outcome if follows else "302" in outcome
        else:  # refused by the guard, or not even a valid URL to the client library
            ok = "SSRF guard" in outcome or "invalid" in outcome.lower()
        if not ok:
            failures[name] = outcome
    assert failures == {}
    assert services.hits == []


async def test_the_allowlist_opens_exactly_what_it_names(
    services: Services, tmp_path: Path
) -> None:
    """With 127.0.0.1/32 in the http node's allowlist the target is reached; the refusal
    message of another feature names that feature's own setting."""
    url = f"http://127.0.0.1:{services.target_port}"
    write_flow(
        tmp_path,
        """
        nodes:
          call: {type: http, url: "{{ input.text }}/x", store: r, next: ok, error: bad}
          ok: {type: say, text: "{{ context.r.secret }}"}
          bad: {type: say, text: "{{ context.httpError.message }}"}
        """,
    )
    open_policy = OutboundPolicy("http node", ("127.0.0.1/32",))
    engine = Engine(FlowRegistry.load(tmp_path), resources=EngineResources(http_policy=open_policy))
    try:
        assert await Conversation(engine).texts(url) == ["internal"]
    finally:
        await engine.aclose()
    assert "nlu_allow_cidrs" in await via_nlu(url, tmp_path)
    assert "translation_allow_cidrs" in await via_translation(url, tmp_path)
