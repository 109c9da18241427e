"""Submissions and the workload read model.

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

S = "intake"


def upgrade() -> None:
    create_messaging_tables(op, S)
    now = sa.text("now()")
    op.create_table(
        "workloads",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("project", sa.Text),
        sa.Column("kind", sa.Text),
        sa.Column("cluster_id", sa.Text),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("phase", sa.Text),
        sa.Column("phase_message", sa.Text, nullable=False, server_default=""),
        sa.Column("phase_at", sa.DateTime(timezone=True)),
        sa.Column("trace_id", sa.Text),
        sa.Column("submission", JSONB, nullable=False),
        sa.Column("effective_spec", JSONB),
        sa.Column("issues", JSONB, nullable=False, server_default="[]"),
        sa.Column("submitted_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        schema=S,
    )
    op.create_index(
        "uq_workloads_live_name",
        "workloads",
        ["project", "name"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("status NOT IN ('rejected', 'Deleted')"),
    )
    op.create_table(
        "phase_history",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("workload_id", sa.Text, nullable=False),
        sa.Column("phase", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("ix_phase_history_workload_id", "phase_history", ["workload_id"], schema=S)


def downgrade() -> None:
    for table in ("phase_history", "workloads", "processed_events", "outbox"):
        op.drop_table(table, schema=S)
