"""The SSRF guard: nothing flowhook sends reaches internal addresses unless allowed.

Every outbound client uses it (see ``flowhook.outbound_http``): webhook deliveries,
handover events, the ``http`` and ``llm`` nodes, NLU connectors and translation.

A webhook URL is chosen by whoever configures an endpoint, so without a guard it
could point flowhook at the cloud metadata service, the database or anything else
on the private network. The guard checks the *resolved* address, twice:

- ``GuardedResolver`` drops blocked addresses from every DNS answer (and fails the
  lookup with a clear error when nothing is left);
- ``AddressGuard.socket_factory`` checks the exact address each socket is about to
  connect to. IP-literal URLs never go through the resolver, and this is the last
  step before ``connect()``, so DNS rebinding (a name answering with a public
  address first and an internal one later) cannot get around it.

Blocked: loopback, private (RFC 1918, ULA), shared (CGNAT), link-local, multicast,
unspecified, documentation/benchmark and other reserved ranges, in IPv4 and IPv6.
IPv6 forms that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by the embedded IPv4 address.
Networks listed in the allowlist (setting ``webhook_allow_cidrs``) are allowed
even when they are in a blocked range. With ``outbound_public`` off, public addresses
are refused too: only the allowlists are reachable (egress by allowlist alone).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWLIST_SETTING = "webhook_allow_cidrs (env FLOWHOOK_WEBHOOK_ALLOW_CIDRS)"

_V4_BLOCKED = (
    "0.0.0.0/8",  # "this network", unspecified
    "10.0.0.0/8",  # private
    "100.64.0.0/10",  # shared address space (carrier-grade NAT)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local (cloud metadata services live here)
    "172.16.0.0/12",  # private
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # documentation (TEST-NET-1)
    "192.88.99.0/24",  # 6to4 relay anycast
    "192.168.0.0/16",  # private
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation (TEST-NET-2)
    "203.0.113.0/24",  # documentation (TEST-NET-3)
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
)
_V6_BLOCKED = (
    "::/128",  # unspecified
    "::1/128",  # loopback
    "::/96",  # IPv4-compatible (deprecated)
    "100::/64",  # discard-only
    "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, ...)
    "2001:db8::/32",  # documentation
    "3fff::/20",  # documentation
    "5f00::/16",  # segment routing SIDs
    "fc00::/7",  # unique local (private)
    "fe80::/10",  # link-local
    "fec0::/10",  # site-local (deprecated)
    "ff00::/8",  # multicast
)
BLOCKED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n) for n in (*_V4_BLOCKED, *_V6_BLOCKED)
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class BlockedAddressError(OSError):
    """A webhook host resolved to (or is) an address the guard refuses."""

    def __init__(
        self, host: str, addresses: Iterable[str], setting: str = ALLOWLIST_SETTING
    ) -> None:
        self.setting = setting
        found = sorted(set(addresses))
        if found == [host]:
            what = f"{host} is a blocked address"
        else:
            what = f"{host} resolves to a blocked address ({', '.join(found)})"
        super().__init__(
            errno.EACCES,
            f"refused by the SSRF guard: {what}; allow it with the {setting} setting",
        )


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse CIDRs (a bare address means just that address); raises ``ValueError``."""
    out: list[IPNetwork] = []
    for cidr in cidrs:
        text = cidr.strip()
        if not text:
            continue
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"not a CIDR network: {text!r}") from None
    return tuple(out)


def parse_ip(host: str) -> IPAddress | None:
    """The address if ``host`` is an IP literal (brackets and IPv6 zone allowed), else None."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def effective_address(ip: IPAddress) -> IPAddress:
    """The address a packet really goes to: IPv4 embedded in IPv6 forms is unwrapped."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


class AddressGuard:
    """Decides which addresses webhook deliveries may connect to."""

    def __init__(
        self,
        allow_cidrs: Iterable[str] = (),
        *,
        setting: str = ALLOWLIST_SETTING,
        allow_public: bool = True,
    ) -> None:
        self.allowed: tuple[IPNetwork, ...] = parse_networks(allow_cidrs)
        # The allowlist setting named in refusals (each outbound feature has its own).
        self.setting = setting
        self.allow_public = allow_public

    def is_allowed(self, ip: IPAddress) -> bool:
        """True for addresses inside the allowlist, and for public ones unless
        ``allow_public`` is off."""
        for candidate in {ip, effective_address(ip)}:
            if any(candidate in net for net in self.allowed if net.version == candidate.version):
                return True
        if not self.allow_public:
            return False
        real = effective_address(ip)
        return not any(real in net for net in BLOCKED_NETWORKS if net.version == real.version)

    def check_host(self, host: str) -> None:
        """Raise ``BlockedAddressError`` if ``host`` is an IP literal the guard refuses.

        Host names are not resolved here: that happens (and is checked) at connect time.
        """
        ip = parse_ip(host)
        if ip is not None and not self.is_allowed(ip):
            raise BlockedAddressError(str(ip), [str(ip)], self.setting)

    def socket_factory(self, addr_info: Any) -> socket.socket:
        """aiohttp's ``socket_factory``: refuses to create a socket for a blocked address."""
        family, type_, proto, _canonname, sockaddr = addr_info
        ip = _address(str(sockaddr[0]))
        if not self.is_allowed(ip):
            raise BlockedAddressError(str(ip), [str(ip)], self.setting)
        return socket.socket(family=family, type=type_, proto=proto)


class GuardedResolver(AbstractResolver):
    """A DNS resolver that only ever answers with addresses the guard allows."""

    def __init__(self, guard: AddressGuard, inner: AbstractResolver | None = None) -> None:
        self._guard = guard
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        allowed = [a for a in answers if self._guard.is_allowed(_address(a["host"]))]
        if not allowed:
            raise BlockedAddressError(
                host.rstrip("."), [a["host"] for a in answers], self._guard.setting
            )
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])
