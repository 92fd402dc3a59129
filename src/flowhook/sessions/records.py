"""What a turn records beside its outputs: transcript entries and analytics statistics,
as each endpoint's data-protection settings allow."""

from __future__ import annotations

import ipaddress
import time

from flowhook.endpoints.settings import EndpointSettings
from flowhook.flows.types import Output, TurnResult
from flowhook.storage.records import InboundMessage, TranscriptEntry, TurnStats


def mask_ip(address: str) -> str:
    """Truncate an address to its network: IPv4 to /24, IPv6 to /48."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def stored_ip(address: str | None, settings: EndpointSettings) -> str | None:
    if address is None:
        return None
    return mask_ip(address) if settings.mask_ip_addresses else address


def transcript_entries(
    msg: InboundMessage, outputs: list[Output], settings: EndpointSettings
) -> list[TranscriptEntry]:
    """The turn's messages in and out; none when the endpoint keeps no transcripts, and
    without text or data when it masks sensitive logging or analytics (the latter also
    keeps the client's address out)."""
    if not settings.store_transcripts:
        return []
    masked = settings.mask_sensitive_logging or settings.mask_sensitive_analytics
    entries = []
    if msg.kind == "message":
        entries.append(
            TranscriptEntry(
                "in",
                "user",
                None if masked else msg.text,
                None if masked else msg.data,
                msg.trace_id,
                None if settings.mask_sensitive_analytics else msg.client_ip,
            )
        )
    source = msg.kind if msg.kind in ("notify", "agent") else "bot"
    entries.extend(
        TranscriptEntry(
            "out", source, None if masked else o.text, None if masked else o.data, msg.trace_id
        )
        for o in outputs
    )
    return entries


def turn_stats(
    msg: InboundMessage, result: TurnResult, was_handed_over: bool, settings: EndpointSettings
) -> TurnStats | None:
    if not settings.collect_analytics:
        return None
    return TurnStats(
        turn_ms=max(0.0, (time.time() - msg.received_at) * 1000.0),
        intent=result.intent,
        handover=result.state.handover is not None and not was_handed_over,
        outputs=len(result.outputs),
    )
