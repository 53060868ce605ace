"""order status origin; links by target

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_origin", sa.String(length=10), nullable=True))
    op.create_index(
        "ix_links_target",
        "links",
        ["school", "target_platform", "target_kind", "target_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_links_target", table_name="links")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("status_origin")
