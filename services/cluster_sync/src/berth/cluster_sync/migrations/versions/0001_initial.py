"""Clusters and placements.

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

S = "cluster_sync"


def upgrade() -> None:
    create_messaging_tables(op, S)
    op.create_table(
        "clusters",
        sa.Column("cluster_id", sa.Text, primary_key=True),
        sa.Column("backend", sa.Text, nullable=False),
        sa.Column("config", JSONB, nullable=False),
        sa.Column("node_pools", JSONB, nullable=False, server_default="[]"),
        sa.Column("gpus", sa.Integer, nullable=False, server_default="0"),
        sa.Column("desired", JSONB, nullable=False, server_default="{}"),
        sa.Column(
            "registered_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_report_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_table(
        "placements",
        sa.Column("workload_id", sa.Text, primary_key=True),
        sa.Column("cluster_id", sa.Text, nullable=False),
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("objects", JSONB, nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("ix_placements_cluster_id", "placements", ["cluster_id"], schema=S)


def downgrade() -> None:
    for table in ("placements", "clusters", "processed_events", "outbox"):
        op.drop_table(table, schema=S)
