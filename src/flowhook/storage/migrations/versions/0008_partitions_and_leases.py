"""partitions of sessions, their leases, the workers table, rest replies on messages,
profile versions

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# flowhook.cluster.partitions: copied, not imported, so this migration keeps meaning
# what it meant when it was written.
PARTITIONS = 256
HANDOVER_PREFIX = "handover:"


def _partition(endpoint_id: str, session_id: str) -> int:
    endpoint_id = endpoint_id.removeprefix(HANDOVER_PREFIX)
    return zlib.crc32(f"{endpoint_id}\x00{session_id}".encode()) % PARTITIONS


def upgrade() -> None:
    for table in ("messages", "outbox"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("partition", sa.Integer(), nullable=False, server_default="0")
            )
    with op.batch_alter_table("messages") as batch:
        # A rest endpoint's outputs, for the request waiting in another process.
        batch.add_column(sa.Column("reply", sa.Text(), nullable=True))
        # PostgreSQL: the accepting transaction's id, so owners can scan incrementally.
        batch.add_column(sa.Column("txid", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("profiles") as batch:
        # Bumped on every change: a turn that read an older version does not commit.
        batch.add_column(sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"))
    conn = op.get_bind()
    # Every row, finished ones too: a replayed output goes back to pending as it is.
    for table in ("messages", "outbox"):
        after = 0
        while True:
            rows = conn.execute(
                sa.text(
                    f"SELECT id, endpoint_id, session_id FROM {table} "  # noqa: S608 - fixed names
                    "WHERE id > :after ORDER BY id LIMIT 5000"
                ),
                {"after": after},
            ).all()
            if not rows:
                break
            conn.execute(
                sa.text(f"UPDATE {table} SET partition = :p WHERE id = :id"),  # noqa: S608
                [{"p": _partition(r.endpoint_id, r.session_id), "id": r.id} for r in rows],
            )
            after = rows[-1].id
    for table in ("messages", "outbox"):
        op.create_index(
            f"ix_{table}_pending_partition",
            table,
            ["partition", "id"],
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
    leases = op.create_table(
        "partition_leases",
        sa.Column("partition", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(80), nullable=True),
        # Bumped on every change of owner: a commit fenced with an older epoch is refused.
        sa.Column("epoch", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("expires_at", sa.Float(), nullable=False, server_default="0"),
    )
    op.bulk_insert(
        leases, [{"partition": p, "epoch": 0, "expires_at": 0.0} for p in range(PARTITIONS)]
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("role", sa.String(12), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_table("partition_leases")
    for table in ("messages", "outbox"):
        op.drop_index(f"ix_{table}_pending_partition", table_name=table)
    with op.batch_alter_table("profiles") as batch:
        batch.drop_column("version")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("txid")
        batch.drop_column("reply")
    for table in ("messages", "outbox"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("partition")
