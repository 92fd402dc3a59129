"""The SSRF corpus of ``test_ssrf_corpus`` against the lean delivery transport, the
delivery default: every corpus URL is refused (or is no valid URL) and the internal
target gets no request."""

from __future__ import annotations

from flowhook.delivery.lean_transport import LeanTransport
from flowhook.delivery.types import WebhookTarget
from tests.unit.outbound.test_ssrf_corpus import (  # noqa: F401 - `services` is a fixture
    Services,
    corpus,
    policy,
    services,
)


async def test_lean_transport_refuses_the_corpus(services: Services) -> None:  # noqa: F811
    """Each corpus URL fails with the guard's refusal, as an invalid URL, or (the allowed
    redirector) as its 302, which is not followed; the target sees nothing."""
    transport = LeanTransport(1.0, 2.0, guard=policy("webhook").guard())
    failures = {}
    try:
        for name, url in corpus(services.target_port, services.redirect_url).items():
            result = await transport.post(WebhookTarget(url=url + "/hook"), b"{}", {})
            outcome = f"{result.status} {result.error}"
            if name.startswith("redirect"):
                ok = "302" in outcome
            else:
                ok = "SSRF guard" in outcome or "invalid" in outcome.lower()
            if not ok:
                failures[name] = outcome
    finally:
        await transport.close()
    assert failures == {}
    assert services.hits == []


async def test_lean_transport_names_the_blocked_host_and_the_setting(services: Services) -> None:  # noqa: F811
    """A name resolving to loopback is refused with the guard's text, naming the name and
    the allowlist setting; an IP literal likewise, checked at the socket."""
    transport = LeanTransport(1.0, 2.0, guard=policy("webhook").guard())
    try:
        by_name = await transport.post(
            WebhookTarget(f"http://localhost:{services.target_port}/hook"), b"{}", {}
        )
        literal = await transport.post(
            WebhookTarget(f"http://127.0.0.1:{services.target_port}/hook"), b"{}", {}
        )
    finally:
        await transport.close()
    assert (by_name.error or "").startswith(
        "refused by the SSRF guard: localhost resolves to a blocked address"
    )
    assert "webhook_allow_cidrs" in (by_name.error or "")
    assert literal.error == (
        "refused by the SSRF guard: 127.0.0.1 is a blocked address; allow it with the "
        "webhook_allow_cidrs (env FLOWHOOK_WEBHOOK_ALLOW_CIDRS) setting"
    )
    assert services.hits == []
