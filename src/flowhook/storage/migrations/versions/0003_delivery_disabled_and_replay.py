"""endpoint delivery switch (410 Gone, operator pause) and replay time of outputs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_disabled_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("delivery_disabled_at", sa.Float(), nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replayed_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("replayed_at")
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.drop_column("delivery_disabled_at")
        batch_op.drop_column("delivery_disabled_reason")
