"""The server's listening socket, bound before anything is announced.

``flowhook serve`` binds its port first and prints the banner only once the bind
succeeded; a port in use (or any other bind failure) gives one clear line and exit 1.
uvicorn then serves on this socket.
"""

from __future__ import annotations

import socket

from flowhook.errors import ConfigError

BACKLOG = 2048  # as uvicorn's default


def bind(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket on ``host``:``port``; ConfigError when it cannot be."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise ConfigError(
            f"cannot listen on {shown}: {exc.strerror or exc} (is another server using the port?)"
        ) from None
    sock.set_inheritable(True)
    return sock
