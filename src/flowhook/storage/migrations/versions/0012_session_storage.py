"""session storage of transformers

Revision ID: 0012
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_storage",
        sa.Column("endpoint_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint_id", "user_id", "session_id"),
    )
    op.create_index("ix_session_storage_updated", "session_storage", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_session_storage_updated", table_name="session_storage")
    op.drop_table("session_storage")
