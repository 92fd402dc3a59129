"""Egress by allowlist alone: with ``outbound_public`` off, the guard refuses public
addresses too, for every outbound feature, and still lets the allowlists through."""

from __future__ import annotations

import ipaddress

import pytest

from flowhook.config import Settings
from flowhook.delivery.ssrf import AddressGuard, BlockedAddressError
from flowhook.outbound_http import FEATURE_ALLOWLISTS, OutboundPolicy

PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:1.1.1.1"]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass_by_default_and_are_refused_without_outbound_public(
    address: str,
) -> None:
    """The default guard lets a public address through; with allow_public off the same
    address is refused, as an IP-literal host and at socket creation."""
    ip = ipaddress.ip_address(address)
    assert AddressGuard().is_allowed(ip)
    closed = AddressGuard(allow_public=False)
    assert not closed.is_allowed(ip)
    with pytest.raises(BlockedAddressError):
        closed.check_host(address)


def test_the_allowlist_still_opens_its_networks_when_public_is_closed() -> None:
    """Loopback in the allowlist stays reachable with allow_public off; loopback outside
    it and a private address stay refused."""
    guard = AddressGuard(["127.0.0.0/8"], allow_public=False)
    assert guard.is_allowed(ipaddress.ip_address("127.0.0.1"))
    assert not guard.is_allowed(ipaddress.ip_address("::1"))
    assert not guard.is_allowed(ipaddress.ip_address("10.0.0.1"))


@pytest.mark.parametrize("feature", sorted(FEATURE_ALLOWLISTS))
def test_every_feature_follows_the_outbound_public_setting(feature: str) -> None:
    """Each outbound feature's policy, built from settings, refuses public addresses
    when FLOWHOOK_OUTBOUND_PUBLIC is false."""
    settings = Settings(outbound_public=False)
    guard = OutboundPolicy.from_settings(feature, settings).guard()
    assert not guard.is_allowed(ipaddress.ip_address("8.8.8.8"))
    assert (
        OutboundPolicy.from_settings(feature, Settings())
        .guard()
        .is_allowed(ipaddress.ip_address("8.8.8.8"))
    )
