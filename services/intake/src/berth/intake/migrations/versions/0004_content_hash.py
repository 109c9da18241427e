"""Content hash of each submission.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "intake"


def upgrade() -> None:
    op.add_column("workloads", sa.Column("content_hash", sa.Text, nullable=True), schema=S)


def downgrade() -> None:
    op.drop_column("workloads", "content_hash", schema=S)
