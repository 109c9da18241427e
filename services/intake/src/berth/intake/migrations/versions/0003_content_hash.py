"""Content hash of each submission.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "intake"


def upgrade() -> None:
    op.add_column("workloads", sa.Column("content_hash", sa.Text, nullable=True), schema=S)


def downgrade() -> None:
    op.drop_column("workloads", "content_hash", schema=S)
