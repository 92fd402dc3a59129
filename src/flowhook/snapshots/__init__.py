"""Snapshots: flows and endpoint settings moved between installations as one JSON file.

``SnapshotService`` is what the CLI (``flowhook export`` / ``flowhook import``) and the
admin API (``GET``/``POST /api/v1/snapshot``) both call.
"""

from __future__ import annotations

from flowhook.snapshots.errors import PassphraseRequired, SnapshotInvalid, WrongPassphrase
from flowhook.snapshots.format import FORMAT_NAME, FORMAT_VERSION, Snapshot, parse_snapshot
from flowhook.snapshots.models import EndpointImported, FlowImported, ImportResult, OnConflict
from flowhook.snapshots.service import SnapshotService

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "EndpointImported",
    "FlowImported",
    "ImportResult",
    "OnConflict",
    "PassphraseRequired",
    "Snapshot",
    "SnapshotInvalid",
    "SnapshotService",
    "WrongPassphrase",
    "parse_snapshot",
]
