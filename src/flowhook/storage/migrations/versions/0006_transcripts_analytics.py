"""transcripts, turn statistics, client IP of messages

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("client_ip", sa.String(length=45), nullable=True))
    op.create_table(
        "transcripts",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("endpoint_id", sa.String(length=36), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("direction", sa.String(length=4), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("trace_id", sa.String(length=80), nullable=False),
        sa.Column("client_ip", sa.String(length=45), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_transcripts_session", "transcripts", ["endpoint_id", "session_id", "id"])
    op.create_index("ix_transcripts_at", "transcripts", ["at"])
    op.create_table(
        "turn_stats",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("endpoint_id", sa.String(length=36), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("turn_ms", sa.Float(), nullable=False),
        sa.Column("intent", sa.String(length=200), nullable=True),
        sa.Column("handover", sa.Boolean(), nullable=False),
        sa.Column("outputs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_turn_stats_endpoint_at", "turn_stats", ["endpoint_id", "at"])


def downgrade() -> None:
    op.drop_table("turn_stats")
    op.drop_table("transcripts")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("client_ip")
