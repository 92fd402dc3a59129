"""failed messages keep their reason and run count; the meta table (configuration
generation, master key check)

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        # Runs started from a read-back of the inbox (after a crash, a restart or a
        # takeover): past the limit the message is failed instead of run again.
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        # Why the message failed (message id, trace id, node when known).
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))
    meta = op.create_table(
        "meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("number", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.bulk_insert(meta, [{"name": "config_generation", "value": None, "number": 0}])


def downgrade() -> None:
    op.drop_table("meta")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("error")
        batch.drop_column("attempts")
