"""Whether each registered cluster's agent is connected (cluster.updated carries it).

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

S = "intake"


def upgrade() -> None:
    op.add_column(
        "clusters",
        sa.Column("connected", sa.Boolean(), nullable=False, server_default="true"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("clusters", "connected", schema=S)
