"""outbox: the pending-per-session index covers what the refill reads of a session's head

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

PENDING = "status = 'pending'"


def upgrade() -> None:
    # The refill reads each session's head and the outputs behind it: id, due time,
    # attempts and partition straight from the index. On SQLite a row's columns after its
    # body (status, attempts, not_before, partition) sit at the end of the body's overflow
    # pages, so reading them from the table walks the whole body (100 KiB: 25 pages).
    # status (always 'pending' here) makes it cover the queries' condition on it: SQLite
    # would otherwise read the row to check it. Its leading columns are those of
    # ix_outbox_pending_session, which it replaces.
    op.create_index(
        "ix_outbox_pending_head",
        "outbox",
        ["endpoint_id", "session_id", "id", "not_before", "attempts", "partition", "status"],
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )
    op.drop_index("ix_outbox_pending_session", "outbox")


def downgrade() -> None:
    op.create_index(
        "ix_outbox_pending_session",
        "outbox",
        ["endpoint_id", "session_id", "id"],
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )
    op.drop_index("ix_outbox_pending_head", "outbox")
