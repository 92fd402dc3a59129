"""Outbound policies that let a test's own servers on loopback be reached."""

from __future__ import annotations

from flowhook.outbound_http import OutboundPolicy

LOOPBACK = ("127.0.0.0/8", "::1/128")


def loopback(feature: str) -> OutboundPolicy:
    """``feature``'s policy with loopback allowlisted (the guard stays on for the rest)."""
    return OutboundPolicy(feature, LOOPBACK)
