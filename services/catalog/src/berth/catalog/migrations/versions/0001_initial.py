"""Organisation and assets.

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

S = "catalog"


def upgrade() -> None:
    create_messaging_tables(op, S)
    now = sa.text("now()")
    op.create_table(
        "departments",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("cluster_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        schema=S,
    )
    op.create_table(
        "projects",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("department", sa.Text, sa.ForeignKey(f"{S}.departments.name"), nullable=True),
        sa.Column("cluster_id", sa.Text, nullable=False),
        sa.Column("namespace", sa.Text, nullable=False, unique=True),
        sa.Column("queue", sa.Text, nullable=False),
        sa.Column("default_node_pools", JSONB, nullable=False, server_default="[]"),
        sa.Column("quota", JSONB, nullable=False, server_default="[]"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        schema=S,
    )
    op.create_table(
        "node_pools",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("cluster_id", sa.Text, nullable=False),
        sa.Column("label_key", sa.Text, nullable=False),
        sa.Column("label_value", sa.Text, nullable=False),
        sa.Column("placement", sa.Text, nullable=False, server_default="binpack"),
        schema=S,
    )
    op.create_table(
        "assets",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("scope_id", sa.Text, nullable=False, server_default=""),
        sa.Column("spec", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.UniqueConstraint("kind", "scope", "scope_id", "name", name="uq_assets_kind_scope_name"),
        schema=S,
    )


def downgrade() -> None:
    for table in ("assets", "node_pools", "projects", "departments", "processed_events", "outbox"):
        op.drop_table(table, schema=S)
