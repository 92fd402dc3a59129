"""The snapshot file: one JSON document with a format name and version.

```
{"format": "flowhook-snapshot", "version": 1, "createdAt": "...", "flowhookVersion": "...",
 "flows": [{"file": "order-help.yaml", "text": "<YAML>"}],
 "endpoints": [{"name": "shop", "settings": {...}, "secrets": ["webhookPassword"]}],
 "secrets": null | {"kdf": "scrypt", ..., "ciphertext": "..."}}
```

``settings`` is the endpoint's admin API view without what belongs to one installation
(see ``NOT_EXPORTED``). ``secrets`` of an endpoint names the secrets it had; their
values are in the top-level ``secrets`` (encrypted) only when exported with secrets.
API keys are never in a snapshot.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from flowhook.snapshots.crypto import EncryptedSecrets
from flowhook.snapshots.errors import SnapshotInvalid

FORMAT_NAME = "flowhook-snapshot"
FORMAT_VERSION = 1

SecretKind = Literal["webhookPassword", "signingSecret"]
SECRET_KINDS: tuple[SecretKind, ...] = ("webhookPassword", "signingSecret")

# A flow file name in a snapshot: a plain file name, so an import can only ever write
# directly into the flows dir (no "..", no "/", no hidden files).
FLOW_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}\.ya?ml")


class _File(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class SnapshotFlow(_File):
    file: str = Field(description="File name in the flows dir, e.g. order-help.yaml.")
    text: str = Field(description="The flow file's YAML text, as it is on disk.")


class SnapshotEndpoint(_File):
    name: str = Field(min_length=1, description="The key: endpoints are matched by name.")
    settings: dict[str, Any] = Field(default_factory=dict)
    secrets: list[SecretKind] = Field(
        default_factory=list, description="The secrets the endpoint had when exported."
    )


class Snapshot(_File):
    format: Literal["flowhook-snapshot"] = "flowhook-snapshot"
    version: int = FORMAT_VERSION
    created_at: datetime
    flowhook_version: str
    flows: list[SnapshotFlow] = Field(default_factory=list)
    endpoints: list[SnapshotEndpoint] = Field(default_factory=list)
    secrets: EncryptedSecrets | None = Field(
        default=None, description="Passwords and signing secrets, encrypted; null: not exported."
    )

    @field_validator("created_at", mode="before")
    @classmethod
    def _iso_time(cls, value: Any) -> Any:
        # The file says ISO 8601; a bare number is not a time it could have written.
        if not isinstance(value, str | datetime):
            raise ValueError("expected an ISO 8601 date and time")
        return value

    def to_json_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True), option=orjson.OPT_INDENT_2)


def parse_snapshot(raw: bytes | str | dict[str, Any]) -> Snapshot:
    """A snapshot from its JSON; ``SnapshotInvalid`` names every problem of the document."""
    if isinstance(raw, dict):
        doc: Any = raw
    else:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SnapshotInvalid([f"the snapshot is not JSON: {exc}"]) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise SnapshotInvalid([f'not a flowhook snapshot (expected "format": "{FORMAT_NAME}")'])
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SnapshotInvalid(['"version" must be an integer'])
    if version > FORMAT_VERSION:
        raise SnapshotInvalid(
            [
                f"snapshot format version {version} is newer than this flowhook reads "
                f"(up to {FORMAT_VERSION}): upgrade flowhook on this installation"
            ]
        )
    if version < 1:
        raise SnapshotInvalid([f"unknown snapshot format version {version}"])
    try:
        return Snapshot.model_validate(doc)
    except ValidationError as exc:
        raise SnapshotInvalid(
            [
                f"{'.'.join(str(p) for p in err['loc']) or 'snapshot'}: {err['msg']}"
                for err in exc.errors(include_input=False)
            ]
        ) from None
