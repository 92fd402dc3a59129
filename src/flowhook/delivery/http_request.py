"""The bytes of a webhook POST: what is fixed per target is encoded once.

A target's request line, ``Host``, ``User-Agent``, ``Content-Type``, ``Accept`` and
``Authorization`` never change between attempts, so they are kept as one ``bytes``
prefix; an attempt adds its own headers (``webhook-id``, signatures),
``Content-Length`` and the body.

No CR, LF or other control character can reach the wire from a URL, a credential or a
header: the URL parser drops or percent-encodes them, credentials travel base64-encoded,
and every part is checked here anyway (a header name or value with one of them makes
the request invalid, never a second header).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from flowhook.delivery.transport import JSON, USER_AGENT, _split_credentials
from flowhook.delivery.types import WebhookTarget

# Control characters (horizontal tab aside) have no place in a request line or header.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class Origin(NamedTuple):
    """Where a connection goes: kept-alive connections are pooled per origin.

    A tuple, so that the pool's dictionary hashes it in C on every request."""

    scheme: str  # "http" or "https"
    host: str  # as resolved and verified: IDNA-encoded, IPv6 without brackets
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme == "https"


class PreparedRequest:
    """Everything of a POST to one target that attempts share.

    ``error`` is set (and ``origin`` is ``None``) when the target cannot be posted
    to: the text is safe to record (it quotes neither URL nor credentials).
    """

    __slots__ = ("error", "head", "origin", "target")

    def __init__(self, target: WebhookTarget) -> None:
        self.target = target  # held so that a memo keyed by its id stays its own
        self.origin: Origin | None = None
        self.head = b""
        self.error: str | None = None
        try:
            url, authorization = _split_credentials(target)
            host = url.raw_host
            port = url.port
            if not host or port is None:
                raise ValueError("invalid webhook URL")
            lines = [
                f"POST {url.raw_path_qs} HTTP/1.1",
                f"Host: {url.host_port_subcomponent}",
                f"User-Agent: {USER_AGENT}",
                f"Content-Type: {JSON}",
                "Accept: */*",
            ]
            if authorization is not None:
                lines.append(f"Authorization: {authorization}")
            if any(_CONTROL.search(line) for line in lines) or " " in url.raw_path_qs:
                raise ValueError("invalid webhook URL")
            self.head = ("\r\n".join(lines) + "\r\n").encode("ascii")
        except UnicodeEncodeError:
            self.error = "invalid webhook URL"
            return
        except ValueError as exc:  # the texts of _split_credentials: safe to record
            self.error = str(exc) or "invalid webhook URL"
            return
        self.origin = Origin(url.scheme, host, port)

    def encode(self, body: bytes, headers: dict[str, str]) -> bytes:
        """The whole request: the kept prefix, ``headers``, ``Content-Length``, ``body``.

        Raises ``ValueError`` for a header that could not be sent as one header line.
        """
        for name in headers:
            if name not in _valid_names:
                _check_name(name)
        if _CONTROL.search("".join(headers.values())):
            raise ValueError("invalid webhook request (a header value holds a control character)")
        extra = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
        try:
            encoded = extra.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError("invalid webhook request (a header value is not Latin-1)") from None
        return b"".join((self.head, encoded, b"Content-Length: %d\r\n\r\n" % len(body), body))


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Names already checked: attempts send the same few (webhook-id, -timestamp, -signature).
_valid_names: set[str] = set()


def _check_name(name: str) -> None:
    if _TOKEN.fullmatch(name) is None:
        raise ValueError("invalid webhook request (invalid header name)")
    if len(_valid_names) < 64:
        _valid_names.add(name)
