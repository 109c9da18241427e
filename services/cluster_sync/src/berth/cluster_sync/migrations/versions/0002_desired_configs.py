"""Desired config per cluster, apart from the registry; what else a report carries.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "cluster_sync"


def upgrade() -> None:
    op.create_table(
        "desired_configs",
        sa.Column("cluster_id", sa.Text, primary_key=True),
        sa.Column("settings", JSONB, nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.execute(
        f"INSERT INTO {S}.desired_configs (cluster_id, settings, requested_at) "
        f"SELECT cluster_id, desired, last_report_at FROM {S}.clusters WHERE desired <> '{{}}'"
    )
    # A request for a cluster that never reported used to create its row: it was never
    # registered, and the registry now holds only clusters whose agent reported.
    op.execute(f"DELETE FROM {S}.clusters WHERE backend = 'unknown'")
    op.drop_column("clusters", "desired", schema=S)
    op.add_column(
        "clusters",
        sa.Column("capabilities", JSONB, nullable=False, server_default="{}"),
        schema=S,
    )
    op.add_column(
        "clusters", sa.Column("extra", JSONB, nullable=False, server_default="{}"), schema=S
    )
    # Clusters registered before cluster.updated existed are announced at their next report.
    op.add_column(
        "clusters",
        sa.Column("announced", sa.Boolean, nullable=False, server_default="false"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("clusters", "announced", schema=S)
    op.drop_column("clusters", "extra", schema=S)
    op.drop_column("clusters", "capabilities", schema=S)
    op.add_column(
        "clusters", sa.Column("desired", JSONB, nullable=False, server_default="{}"), schema=S
    )
    op.drop_table("desired_configs", schema=S)
