"""One master key per database: checked at start-up, rotated by one command.

Stored secrets (webhook passwords, signing secrets) are sealed with the master key
(``flowhook.endpoints.vault``). Processes sharing a database must share that key: one
that generated a key of its own would fail every delivery needing a secret another
process stored. So the database keeps a check value, a known text sealed with the key
(``meta.secret_key_check``). A server or CLI whose key cannot open it refuses to
start, with a clear error. A database from before the check gets one on first start,
after the stored secrets are proven to open with the key.

``rotate`` re-encrypts every stored secret and the check value under a new key, in one
transaction (``flowhook secret-key rotate``, docs/security.md).
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, or_, select, update
from sqlalchemy.exc import IntegrityError

from flowhook.endpoints.security import PASSWORD, SIGNING
from flowhook.endpoints.vault import SecretBox, UnreadableSecret
from flowhook.errors import ConfigError
from flowhook.storage import schema as t
from flowhook.storage.config_writes import bump_generation

CHECK_NAME = "secret_key_check"
CHECK_TEXT = "flowhook master key check"
CHECK_CONTEXT = "meta:secret_key_check"
WRONG_KEY = (
    "the master key (FLOWHOOK_SECRET_KEY, or the key file in the data dir) cannot read this "
    "database's stored secrets: every process on one database needs the same key. Use the "
    "key the database was set up with, or rotate it with `flowhook secret-key rotate`"
)
# (column, context kind) of every sealed column of endpoints
_SEALED = (
    ("webhook_password", PASSWORD),
    ("signing_secret", SIGNING),
    ("previous_signing_secret", SIGNING),
)


def verify_master_key(engine: Engine, box: SecretBox) -> None:
    """Raise ConfigError unless ``box``'s key is the database's; record the check value
    when the database has none yet."""
    with engine.begin() as conn:
        stored = _check_value(conn)
        if stored is None:
            _open_a_stored_secret(conn, box)
    if stored is None:
        try:
            with engine.begin() as conn:
                conn.execute(
                    t.meta.insert().values(
                        name=CHECK_NAME, value=box.seal(CHECK_TEXT, CHECK_CONTEXT), number=0
                    )
                )
        except IntegrityError:
            pass  # another process starting at the same time wrote one: check that
        with engine.connect() as conn:
            stored = _check_value(conn)
    if stored is None or not _opens(box, stored, CHECK_CONTEXT, CHECK_TEXT):
        raise ConfigError(WRONG_KEY)


def rotate_master_key(engine: Engine, old: SecretBox, new: SecretBox) -> int:
    """Re-encrypt every stored secret and the check value from ``old`` to ``new``, all in
    one transaction; returns how many secrets were re-encrypted."""
    count = 0
    with engine.begin() as conn:
        stored = _check_value(conn)
        if stored is not None and not _opens(old, stored, CHECK_CONTEXT, CHECK_TEXT):
            raise ConfigError(WRONG_KEY)
        columns = [getattr(t.endpoints.c, name) for name, _kind in _SEALED]
        rows = conn.execute(
            select(t.endpoints.c.id, *columns).where(or_(*(c.isnot(None) for c in columns)))
        ).all()
        for row in rows:
            changes: dict[str, str] = {}
            for name, kind in _SEALED:
                value = getattr(row, name)
                if value is None:
                    continue
                context = f"{row.id}:{kind}"
                try:
                    plain = old.open(value, context)
                except UnreadableSecret:
                    raise ConfigError(WRONG_KEY) from None
                changes[name] = new.seal(plain, context)
                count += 1
            conn.execute(update(t.endpoints).where(t.endpoints.c.id == row.id).values(**changes))
        sealed_check = new.seal(CHECK_TEXT, CHECK_CONTEXT)
        if stored is None:
            conn.execute(t.meta.insert().values(name=CHECK_NAME, value=sealed_check, number=0))
        else:
            conn.execute(
                update(t.meta).where(t.meta.c.name == CHECK_NAME).values(value=sealed_check)
            )
        bump_generation(conn)  # caches drop the old ciphertexts
    return count


def _check_value(conn: Connection) -> str | None:
    value = conn.execute(select(t.meta.c.value).where(t.meta.c.name == CHECK_NAME)).scalar()
    return None if value is None else str(value)


def _open_a_stored_secret(conn: Connection, box: SecretBox) -> None:
    for name, kind in _SEALED:
        column = getattr(t.endpoints.c, name)
        row = conn.execute(
            select(t.endpoints.c.id, column).where(column.isnot(None)).limit(1)
        ).first()
        if row is not None and not _opens(box, row[1], f"{row[0]}:{kind}", None):
            raise ConfigError(WRONG_KEY)


def _opens(box: SecretBox, stored: str, context: str, expected: str | None) -> bool:
    try:
        plain = box.open(stored, context)
    except UnreadableSecret:
        return False
    return expected is None or plain == expected
