"""Owners and cluster protection flags.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from berth.shared.migrations import create_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = "ownership"


def upgrade() -> None:
    create_messaging_tables(op, S)
    op.create_table(
        "owners",
        sa.Column("workload_id", sa.Text, primary_key=True),
        sa.Column("cluster_id", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("ref", JSONB, nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        schema=S,
    )
    op.create_table(
        "clusters",
        sa.Column("cluster_id", sa.Text, primary_key=True),
        sa.Column("protection", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    for table in ("clusters", "owners", "processed_events", "outbox"):
        op.drop_table(table, schema=S)
