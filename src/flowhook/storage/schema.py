"""The tables, as SQLAlchemy Core metadata (the single source Alembic migrations follow).

Times are stored as unix seconds (float): portable across backends and cheap to
compare in the hot path. JSON documents are stored as text encoded with orjson.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# SQLite only aliases the rowid (fast, auto-incrementing) for "INTEGER PRIMARY KEY".
RowId = BigInteger().with_variant(Integer(), "sqlite")

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("flow", String(200), nullable=False),
    Column("url_token", String(64), nullable=False, unique=True),
    Column("auth_method", String(16), nullable=False),
    Column("webhook_url", Text, nullable=False),
    Column("webhook_user", String(200)),
    Column("webhook_password", Text),  # encrypted (endpoints.vault)
    Column("locale", String(35)),
    Column("type", String(16), nullable=False, server_default="webhook"),
    # The generic endpoint settings (session timeout, rate limit, data protection...),
    # as a JSON document: read once per endpoint into the cache, never per message.
    Column("settings", Text),
    Column("active", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # Standard Webhooks signing (0002): encrypted secrets; the previous one keeps
    # signing until signing_secret_rotated_at + the grace period.
    Column("signing_secret", Text),
    Column("previous_signing_secret", Text),
    Column("signing_secret_rotated_at", Float),
    # Delivery switched off (0003): set when the webhook answered 410 Gone or an operator
    # paused it; outputs stay pending (not attempted) until it is cleared again.
    Column("delivery_disabled_reason", Text),
    Column("delivery_disabled_at", Float),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "endpoint_id",
        String(36),
        ForeignKey("endpoints.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(200)),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float),
)

# The inbox: every accepted message, committed before the 202 is sent.
messages = Table(
    "messages",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("endpoint_id", String(36), nullable=False),
    Column("session_id", Text, nullable=False),
    Column("user_id", Text, nullable=False),
    Column("trace_id", String(80), nullable=False),
    # message: run through the flow; notify: deliver text/data as is, in session order
    Column("kind", String(12), nullable=False, server_default="message"),
    Column("client_ip", String(45)),  # truncated when the endpoint masks IP addresses
    Column("text", Text),
    Column("data", Text),
    Column("received_at", Float, nullable=False),
    # pending -> done | failed (the flow crashed; the error is logged, the session goes on)
    Column("status", String(12), nullable=False),
    Column("processed_at", Float),
    # 0008: the session's partition (flowhook.cluster.partitions), for the process that owns it
    Column("partition", Integer, nullable=False, server_default="0"),
    # 0008: a rest endpoint's outputs (AIOutput objects), read by the request waiting for them
    Column("reply", Text),
    # 0008, several processes on PostgreSQL: the id of the transaction that accepted it
    # (flowhook.cluster.scanner reads only what committed since its last look)
    Column("txid", BigInteger),
    # 0009: runs started from a read-back of the inbox (crash, restart, takeover); past
    # FLOWHOOK_TURN_MAX_ATTEMPTS the message is failed instead of run again
    Column("attempts", Integer, nullable=False, server_default="0"),
    # 0009: why a failed message failed (message id, trace id, node when known)
    Column("error", Text),
)
Index("ix_messages_pending", messages.c.status, messages.c.id)
Index(
    "ix_messages_pending_partition",
    messages.c.partition,
    messages.c.id,
    postgresql_where=messages.c.status == "pending",
    sqlite_where=messages.c.status == "pending",
)

sessions = Table(
    "sessions",
    metadata,
    Column("endpoint_id", String(36), primary_key=True),
    Column("session_id", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("turns", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# The outbox: every bot output, written in the same transaction as its turn. Its body is
# in ``outbox_bodies`` (0014): these rows change on every attempt, the body never does.
outbox = Table(
    "outbox",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("delivery_id", String(40), nullable=False, unique=True),
    # the endpoint, or "handover:<endpoint id>" for events owed to its handover provider
    Column("endpoint_id", String(80), nullable=False),
    Column("session_id", Text, nullable=False),
    Column("message_id", BigInteger),
    # pending -> delivered | failed
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("not_before", Float, nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("replayed_at", Float),  # 0003: last time an operator sent it again
    Column("partition", Integer, nullable=False, server_default="0"),  # 0008, as in messages
)
Index("ix_outbox_pending", outbox.c.status, outbox.c.id)
Index(
    "ix_outbox_pending_partition",
    outbox.c.partition,
    outbox.c.id,
    postgresql_where=outbox.c.status == "pending",
    sqlite_where=outbox.c.status == "pending",
)
Index("ix_outbox_session", outbox.c.endpoint_id, outbox.c.session_id, outbox.c.id)
# 0010: the outbox sweep, by endpoint and due time.
Index(
    "ix_outbox_pending_due",
    outbox.c.endpoint_id,
    outbox.c.not_before,
    outbox.c.id,
    postgresql_where=outbox.c.status == "pending",
    sqlite_where=outbox.c.status == "pending",
)
# 0013: a session's head and what follows it, read from the index alone (replaces 0010's
# ix_outbox_pending_session, its first three columns).
Index(
    "ix_outbox_pending_head",
    outbox.c.endpoint_id,
    outbox.c.session_id,
    outbox.c.id,
    outbox.c.not_before,
    outbox.c.attempts,
    outbox.c.partition,
    outbox.c.status,
    postgresql_where=outbox.c.status == "pending",
    sqlite_where=outbox.c.status == "pending",
)

# 0014: each output's body (the exact JSON bytes POSTed), written once with its outbox row
# and deleted with it. Apart from the row because SQLite rewrites a whole record, overflow
# pages included, when any column of it changes: with the body inside, every outcome of
# an attempt wrote the body again (about twice its size to the WAL, docs/performance.md,
# "Outcome updates rewrote the body"). No foreign key, as for ``delivery_attempts``: the
# rows are deleted together explicitly (``storage/housekeeping.py``), and a key would add
# a check per output to the turn's commit on PostgreSQL.
outbox_bodies = Table(
    "outbox_bodies",
    metadata,
    # SQLite: the rowid itself (INTEGER PRIMARY KEY), so the record holds only the body.
    Column("outbox_id", RowId, primary_key=True, autoincrement=False),
    Column("body", Text, nullable=False),
)

attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("outbox_id", BigInteger, nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("status", Integer),
    Column("duration_ms", Float, nullable=False),
    Column("error", Text),
    Column("body_excerpt", Text),
)

# What a flow remembers about a user across sessions (`profile` in templates),
# per endpoint: endpoints may serve different tenants, so profiles are not shared.
profiles = Table(
    "profiles",
    metadata,
    Column("endpoint_id", String(36), primary_key=True),
    Column("user_id", Text, primary_key=True),
    Column("data", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
    # 0008: bumped on every change; with several processes, a turn that read an older
    # version is refused at commit and runs again on the new profile.
    Column("version", BigInteger, nullable=False, server_default="1"),
)

# Each session's messages in and out, for the transcript API (per endpoint: on/off,
# retention). A masked endpoint's rows carry no text or data.
transcripts = Table(
    "transcripts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("endpoint_id", String(36), nullable=False),
    Column("session_id", Text, nullable=False),
    Column("user_id", Text, nullable=False),
    Column("direction", String(4), nullable=False),  # in | out
    Column("source", String(12), nullable=False),  # user | bot | notify
    Column("text", Text),
    Column("data", Text),
    Column("trace_id", String(80), nullable=False),
    Column("client_ip", String(45)),
    Column("at", Float, nullable=False),
)
Index(
    "ix_transcripts_session", transcripts.c.endpoint_id, transcripts.c.session_id, transcripts.c.id
)
Index("ix_transcripts_at", transcripts.c.at)

# One row per turn, for the analytics API (per endpoint: on/off).
turn_stats = Table(
    "turn_stats",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("endpoint_id", String(36), nullable=False),
    Column("session_id", Text, nullable=False),
    Column("at", Float, nullable=False),
    Column("turn_ms", Float, nullable=False),  # accepted -> turn committed
    Column("intent", String(200)),
    Column("handover", Boolean, nullable=False),
    Column("outputs", Integer, nullable=False),
)
Index("ix_turn_stats_endpoint_at", turn_stats.c.endpoint_id, turn_stats.c.at)

# 0008: which process owns each partition of sessions, until when. Claimed with
# FOR UPDATE SKIP LOCKED; a turn commits only while its process holds the lease with
# the epoch it started under (flowhook.cluster).
partition_leases = Table(
    "partition_leases",
    metadata,
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("owner", String(80)),
    Column("epoch", BigInteger, nullable=False, server_default="0"),
    Column("expires_at", Float, nullable=False, server_default="0"),
)

# 0008: the processes alive, by heartbeat; workers divide the partitions among themselves.
workers = Table(
    "workers",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("role", String(12), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

# 0009: small named values shared by every process on the database. ``config_generation``
# (number) is bumped by every change to endpoints or keys, whoever makes it, and read
# before each request, so a change holds from the very next request everywhere;
# ``secret_key_check`` (value) is a known text sealed with the master key.
meta = Table(
    "meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text),
    Column("number", BigInteger, nullable=False, server_default="0"),
)

# 0012: what an endpoint's transformers keep per session (readable and writable by
# them), one JSON object per user and session.
session_storage = Table(
    "session_storage",
    metadata,
    Column("endpoint_id", String(36), primary_key=True),
    Column("user_id", Text, primary_key=True),
    Column("session_id", Text, primary_key=True),
    Column("data", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_session_storage_updated", session_storage.c.updated_at)
