"""outbox rows may address a handover provider ("handover:<endpoint id>")

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column(
            "endpoint_id", type_=sa.String(length=80), existing_type=sa.String(length=36)
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column(
            "endpoint_id", type_=sa.String(length=36), existing_type=sa.String(length=80)
        )
