"""outbox: each output's body in a table of its own, apart from the state that changes

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# SQLite: "INTEGER PRIMARY KEY" makes the id the rowid, so a record holds only the body.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Every attempt's outcome updates its outbox row (status, attempts, due time, last
    # answer). SQLite rewrites a whole record, overflow pages included, whatever column
    # changes: with a 100 KiB body in the row each outcome wrote about 200 KiB to the WAL.
    # The body never changes after the turn that wrote it, so it moves to a table of its
    # own and the outbox rows become small.
    op.create_table(
        "outbox_bodies",
        sa.Column("outbox_id", ROW_ID, primary_key=True, autoincrement=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.execute("INSERT INTO outbox_bodies (outbox_id, body) SELECT id, body FROM outbox")
    # SQLite: batch mode copies the table without the column (the partial indexes come
    # back with their conditions). PostgreSQL: the column is dropped in place; rows keep
    # its old value on disk until they are next updated or deleted.
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("body")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("body", sa.Text, nullable=True))
    op.execute(
        "UPDATE outbox SET body = "
        "(SELECT b.body FROM outbox_bodies AS b WHERE b.outbox_id = outbox.id)"
    )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("body", existing_type=sa.Text, nullable=False)
    op.drop_table("outbox_bodies")
