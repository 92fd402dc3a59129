"""endpoint signing secrets (Standard Webhooks)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signing_secret", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("previous_signing_secret", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("signing_secret_rotated_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.drop_column("signing_secret_rotated_at")
        batch_op.drop_column("previous_signing_secret")
        batch_op.drop_column("signing_secret")
