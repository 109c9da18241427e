"""Evaluations.

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

S = "policy"


def upgrade() -> None:
    create_messaging_tables(op, S)
    op.create_table(
        "evaluations",
        sa.Column("workload_id", sa.Text, primary_key=True),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("effective_spec", JSONB),
        sa.Column("issues", JSONB, nullable=False, server_default="[]"),
        sa.Column(
            "evaluated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        schema=S,
    )


def downgrade() -> None:
    for table in ("evaluations", "processed_events", "outbox"):
        op.drop_table(table, schema=S)
