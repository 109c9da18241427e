"""Applied workloads.

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

S = "scheduler_adapter"


def upgrade() -> None:
    create_messaging_tables(op, S)
    op.create_table(
        "workloads",
        sa.Column("workload_id", sa.Text, primary_key=True),
        sa.Column("ref", JSONB, nullable=False),
        sa.Column("manifests", JSONB, nullable=False),
        sa.Column("desired", sa.Text, nullable=False, server_default="Running"),
        sa.Column("phase", sa.Text),
        sa.Column("phase_message", sa.Text, nullable=False, server_default=""),
        sa.Column("traceparent", sa.Text),
        sa.Column("correlation_id", sa.Text),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        schema=S,
    )


def downgrade() -> None:
    for table in ("workloads", "processed_events", "outbox"):
        op.drop_table(table, schema=S)
