"""endpoint type and generic settings; message kind (notify)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(
            sa.Column("type", sa.String(length=16), nullable=False, server_default="webhook")
        )
        batch.add_column(sa.Column("settings", sa.Text(), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=12), nullable=False, server_default="message")
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("kind")
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("settings")
        batch.drop_column("type")
