"""Deliveries over HTTPS to a local TLS receiver with a certificate of a test CA.

The CA (``trustme``) is trusted only by the client context the test passes in; with the
default context (system CAs) the same receiver must be refused. Each transport in turn.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest
import trustme

from flowhook.delivery.types import WebhookTarget
from tests.support.raw_http import RawReceiver, headers_of
from tests.support.transports import MakeTransport

BODY = b'{"userId":"u1","sessionId":"s1","AIOutput":{"text":"Hi","source":"bot"}}'


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A default client context (verification on, host names checked) trusting the CA."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def server_context(ca: trustme.CA, names: list[str | None], *hosts: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*hosts).configure_cert(context)

    def remember(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = remember
    return context


@pytest.fixture
def server_names() -> list[str | None]:
    return []


@pytest.fixture
async def tls(ca: trustme.CA, server_names: list[str | None]) -> AsyncIterator[RawReceiver]:
    """A TLS receiver on 127.0.0.1 whose certificate names localhost and 127.0.0.1."""
    rec = RawReceiver()
    await rec.start(server_context(ca, server_names, "localhost", "127.0.0.1"))
    yield rec
    await rec.stop()


def https(rec: RawReceiver, host: str) -> str:
    return f"https://{host}:{rec.port}/hook"


async def test_https_by_name_sends_sni_and_verifies_the_certificate(
    tls: RawReceiver,
    server_names: list[str | None],
    client_context: ssl.SSLContext,
    make_transport: MakeTransport,
) -> None:
    """https://localhost:port: the TLS handshake names 'localhost' (SNI), the certificate
    verifies against the trusted CA, the POST arrives with Host localhost:port, and the
    second attempt reuses the connection."""
    transport = make_transport(1.0, 5.0, ssl_context=client_context)
    try:
        target = WebhookTarget(https(tls, "localhost"), user="bot", password="pw")
        first = await transport.post(target, BODY, {"webhook-id": "m1"})
        second = await transport.post(target, BODY, {"webhook-id": "m2"})
    finally:
        await transport.close()
    assert first.ok, first
    assert second.ok, second
    assert "localhost" in server_names
    assert headers_of(tls.requests[0])["host"] == f"localhost:{tls.port}"
    assert len(tls.connections) == 1


async def test_https_to_an_ip_literal_checks_the_ip_in_the_certificate(
    tls: RawReceiver, client_context: ssl.SSLContext, make_transport: MakeTransport
) -> None:
    """https://127.0.0.1:port verifies against the certificate's IP address entry."""
    transport = make_transport(1.0, 5.0, ssl_context=client_context)
    try:
        result = await transport.post(WebhookTarget(https(tls, "127.0.0.1")), BODY, {})
    finally:
        await transport.close()
    assert result.ok, result


async def test_untrusted_certificate_is_refused(
    tls: RawReceiver, make_transport: MakeTransport
) -> None:
    """With the default context (system CAs) the test CA is unknown: no request is sent and
    the attempt says 'TLS certificate verification failed'."""
    transport = make_transport(1.0, 5.0)
    try:
        result = await transport.post(WebhookTarget(https(tls, "localhost")), BODY, {})
    finally:
        await transport.close()
    assert result.status is None
    assert result.error == "TLS certificate verification failed"
    assert tls.requests == []


async def test_certificate_for_another_name_is_refused(
    ca: trustme.CA, client_context: ssl.SSLContext, make_transport: MakeTransport
) -> None:
    """A certificate from the trusted CA but for another host name does not verify."""
    rec = RawReceiver()
    await rec.start(server_context(ca, [], "hooks.example.test"))
    transport = make_transport(1.0, 5.0, ssl_context=client_context)
    try:
        result = await transport.post(WebhookTarget(https(rec, "localhost")), BODY, {})
    finally:
        await transport.close()
        await rec.stop()
    assert result.status is None
    assert result.error == "TLS certificate verification failed"
    assert rec.requests == []
