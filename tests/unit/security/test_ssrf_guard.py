"""The SSRF guard's decisions: which addresses webhooks may reach, and the allowlist."""

from __future__ import annotations

import ipaddress
import json
import socket
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from pydantic import ValidationError

from flowhook.config import Settings
from flowhook.delivery.ssrf import AddressGuard, BlockedAddressError, GuardedResolver

BLOCKED = [
    "127.0.0.1",
    "127.255.255.254",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "0:0:0:0:0:ffff:7f00:0001",
    "169.254.169.254",
    "::ffff:169.254.169.254",
    "fe80::1",
    "10.0.0.1",
    "10.255.255.255",
    "::ffff:10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "100.64.0.1",
    "0.0.0.0",
    "0.1.2.3",
    "::",
    "::7f00:1",
    "224.0.0.1",
    "239.255.255.250",
    "ff02::1",
    "ff0e::1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",
    "198.18.0.1",
    "2001:db8::1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::1",
    "2001::1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", BLOCKED)
def test_blocked_ranges_are_refused(address: str) -> None:
    """Loopback, private, link-local, multicast, reserved and unspecified addresses, in
    IPv4 and IPv6, IPv4-mapped/NAT64/6to4 forms included, are refused without an allowlist."""
    guard = AddressGuard()
    assert not guard.is_allowed(ipaddress.ip_address(address))
    with pytest.raises(BlockedAddressError, match="SSRF guard"):
        guard.check_host(f"[{address}]" if ":" in address else address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    """Global unicast addresses pass the guard."""
    guard = AddressGuard()
    assert guard.is_allowed(ipaddress.ip_address(address))
    guard.check_host(address)


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::ffff:127.0.0.1", True),
        ("::1", True),
        ("10.0.0.1", False),
        ("169.254.169.254", False),
        ("fe80::1", False),
    ],
)
def test_allowlist_opens_only_the_listed_networks(address: str, allowed: bool) -> None:
    """With 127.0.0.0/8 and ::1/128 allowed, loopback (also IPv4-mapped) passes and every
    other blocked range stays blocked."""
    guard = AddressGuard(["127.0.0.0/8", "::1/128"])
    assert guard.is_allowed(ipaddress.ip_address(address)) is allowed


def test_host_names_are_not_judged_at_configuration_time() -> None:
    """check_host only refuses IP literals; names are checked after DNS, at connect time."""
    AddressGuard().check_host("localhost")
    AddressGuard().check_host("example.com")


def test_socket_factory_refuses_blocked_addresses_before_connecting() -> None:
    """The connect-time check: no socket is made for a blocked address; a public one gets one."""
    guard = AddressGuard()
    info: Any = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80))
    with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.1 is a blocked address"):
        guard.socket_factory(info)
    v6: Any = (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1%1", 80, 0, 1))
    with pytest.raises(BlockedAddressError):
        guard.socket_factory(v6)
    sock = guard.socket_factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", 80)))
    sock.close()


class _Rebinding(AbstractResolver):
    """Answers with a public address first, then with loopback (a DNS rebinding attack)."""

    def __init__(self) -> None:
        self.answers = [["93.184.216.34"], ["127.0.0.1", "::1"]]

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.answers.pop(0)
        ]

    async def close(self) -> None:
        pass


async def test_resolver_refuses_a_name_that_rebinds_to_loopback() -> None:
    """Every DNS answer is checked: a name that first resolves to a public address and
    later to loopback is refused the second time, with the name and addresses in the error."""
    resolver = GuardedResolver(AddressGuard(), _Rebinding())
    first = await resolver.resolve("rebind.example", 80)
    assert [a["host"] for a in first] == ["93.184.216.34"]
    with pytest.raises(BlockedAddressError) as info:
        await resolver.resolve("rebind.example", 80)
    assert "rebind.example resolves to a blocked address (127.0.0.1, ::1)" in str(info.value)
    assert "webhook_allow_cidrs" in str(info.value)


async def test_resolver_keeps_only_allowed_addresses_of_a_mixed_answer() -> None:
    """A name answering with both a public and a private address is only connected to
    the public one."""

    class Mixed(_Rebinding):
        def __init__(self) -> None:
            self.answers = [["10.0.0.5", "93.184.216.34"]]

    resolver = GuardedResolver(AddressGuard(), Mixed())
    assert [a["host"] for a in await resolver.resolve("mixed.example")] == ["93.184.216.34"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ("127.0.0.0/8,::1/128", ["127.0.0.0/8", "::1/128"]),
        (" 10.0.0.0/8 , 192.168.0.0/16 ", ["10.0.0.0/8", "192.168.0.0/16"]),
        (json.dumps(["127.0.0.1/32"]), ["127.0.0.1/32"]),
        ("", []),
    ],
)
def test_allowlist_setting_reads_comma_separated_or_json(
    env: str, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """FLOWHOOK_WEBHOOK_ALLOW_CIDRS accepts a comma-separated list or a JSON list."""
    monkeypatch.setenv("FLOWHOOK_WEBHOOK_ALLOW_CIDRS", env)
    assert Settings().webhook_allow_cidrs == expected


def test_allowlist_setting_rejects_a_bad_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in the allowlist fails at startup, naming the bad entry."""
    monkeypatch.setenv("FLOWHOOK_WEBHOOK_ALLOW_CIDRS", "127.0.0.0/8,localhost")
    with pytest.raises(ValidationError, match="not a CIDR network: 'localhost'"):
        Settings()
