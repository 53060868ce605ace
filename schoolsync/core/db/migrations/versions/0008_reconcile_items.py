"""reconciliation items

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# as the tables were when this was written (a migration does not follow later model changes)
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconcile_items",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("school", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("payment_ids", JSONType, nullable=False),
        sa.Column("order_ids", JSONType, nullable=False),
        sa.Column("candidates", JSONType, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("resolution", JSONType, nullable=True),
        sa.Column("first_seen_at", Timestamp, nullable=False),
        sa.Column("last_seen_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconcile_items")),
        sa.UniqueConstraint("school", "subject", name=op.f("uq_reconcile_items_school_subject")),
    )
    with op.batch_alter_table("reconcile_items", schema=None) as batch_op:
        batch_op.create_index("ix_reconcile_items_status", ["school", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_reconcile_items_school"), ["school"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reconcile_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconcile_items_school"))
        batch_op.drop_index("ix_reconcile_items_status")
    op.drop_table("reconcile_items")
