"""Intake's copy of the cluster registry.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "intake"


def upgrade() -> None:
    op.create_table(
        "clusters",
        sa.Column("cluster_id", sa.Text, primary_key=True),
        sa.Column("backend", sa.Text, nullable=False),
        sa.Column("config", JSONB, nullable=False),
        sa.Column("node_pools", JSONB, nullable=False, server_default="[]"),
        sa.Column("gpus", sa.Integer, nullable=False, server_default="0"),
        sa.Column("capabilities", JSONB, nullable=False, server_default="{}"),
        sa.Column("extra", JSONB, nullable=False, server_default="{}"),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("clusters", schema=S)
