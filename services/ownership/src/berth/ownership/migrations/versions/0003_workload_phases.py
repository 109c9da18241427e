"""Each workload's latest phase, for deciding which actions it allows.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "ownership"


def upgrade() -> None:
    op.create_table(
        "workload_phases",
        sa.Column("workload_id", sa.Text, primary_key=True),
        sa.Column("phase", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("workload_phases", schema=S)
