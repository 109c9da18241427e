"""A cluster whose agent stopped reporting is marked disconnected.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "cluster_sync"


def upgrade() -> None:
    op.add_column(
        "clusters",
        sa.Column("connected", sa.Boolean(), nullable=False, server_default="true"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("clusters", "connected", schema=S)
