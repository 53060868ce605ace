"""refund requests (W9); refunds know their request

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 16:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# as the tables were when this was written (a migration does not follow later model changes)
JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
Timestamp = sa.DateTime(timezone=True)

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refund_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("school", sa.String(length=40), nullable=False),
        sa.Column("order_number", sa.String(length=60), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("card_last4", sa.String(length=4), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=120), nullable=False),
        sa.Column("confirmed_by", sa.String(length=120), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("data", JSONType, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("confirmed_at", Timestamp, nullable=True),
        sa.Column("finished_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_requests")),
    )
    with op.batch_alter_table("refund_requests", schema=None) as batch_op:
        batch_op.create_index("ix_refund_requests_order", ["school", "order_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_refund_requests_school"), ["school"], unique=False)
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_refunds_request", ["request_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_refunds_request")
        batch_op.drop_column("request_id")
    with op.batch_alter_table("refund_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refund_requests_school"))
        batch_op.drop_index("ix_refund_requests_order")
    op.drop_table("refund_requests")
