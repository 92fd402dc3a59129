"""outbox: pending outputs indexed by endpoint and due time, and by session

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PENDING = "status = 'pending'"


def upgrade() -> None:
    # The sweep walks endpoints with pending outputs and reads each one's due work.
    op.create_index(
        "ix_outbox_pending_due",
        "outbox",
        ["endpoint_id", "not_before", "id"],
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )
    # Whether an earlier output of the same session still waits for its retry.
    op.create_index(
        "ix_outbox_pending_session",
        "outbox",
        ["endpoint_id", "session_id", "id"],
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending_session", "outbox")
    op.drop_index("ix_outbox_pending_due", "outbox")
