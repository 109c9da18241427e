"""The protection administrators asked for, beside the one the cluster reports.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "ownership"


def upgrade() -> None:
    op.alter_column("clusters", "protection", nullable=True, schema=S)
    op.alter_column("clusters", "updated_at", nullable=True, schema=S)
    op.add_column("clusters", sa.Column("desired_protection", sa.Boolean), schema=S)
    op.add_column(
        "clusters", sa.Column("desired_at", sa.DateTime(timezone=True), nullable=True), schema=S
    )


def downgrade() -> None:
    op.drop_column("clusters", "desired_at", schema=S)
    op.drop_column("clusters", "desired_protection", schema=S)
    op.execute(f"DELETE FROM {S}.clusters WHERE protection IS NULL")
    op.alter_column("clusters", "updated_at", nullable=False, schema=S)
    op.alter_column("clusters", "protection", nullable=False, schema=S)
