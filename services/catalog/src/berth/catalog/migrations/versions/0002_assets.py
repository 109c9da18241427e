"""Asset status, credential values kept apart, asset usage, organisation quota.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "catalog"


def upgrade() -> None:
    op.add_column("assets", sa.Column("status", sa.Text, nullable=True), schema=S)
    op.add_column(
        "assets", sa.Column("status_reason", sa.Text, nullable=False, server_default=""), schema=S
    )
    op.add_column(
        "assets", sa.Column("created_by", sa.Text, nullable=False, server_default=""), schema=S
    )
    op.add_column(
        "departments", sa.Column("quota", JSONB, nullable=False, server_default="[]"), schema=S
    )
    op.add_column(
        "node_pools", sa.Column("node_types", JSONB, nullable=False, server_default="[]"), schema=S
    )
    op.create_table(
        "credential_values",
        sa.Column(
            "asset_id",
            sa.Text,
            sa.ForeignKey(f"{S}.assets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("secret_values", JSONB, nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        schema=S,
    )
    op.create_table(
        "asset_usage",
        sa.Column("asset_id", sa.Text, nullable=False),
        sa.Column("workload_id", sa.Text, nullable=False),
        sa.Column("workload", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("asset_id", "workload_id"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("asset_usage", schema=S)
    op.drop_table("credential_values", schema=S)
    op.drop_column("node_pools", "node_types", schema=S)
    op.drop_column("departments", "quota", schema=S)
    for column in ("created_by", "status_reason", "status"):
        op.drop_column("assets", column, schema=S)
