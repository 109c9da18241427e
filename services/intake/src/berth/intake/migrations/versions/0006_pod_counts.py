"""Pod counts of the last phase, shown by `berth list`.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

S = "intake"


def upgrade() -> None:
    op.add_column("workloads", sa.Column("running_pods", sa.Integer, nullable=True), schema=S)
    op.add_column("workloads", sa.Column("requested_pods", sa.Integer, nullable=True), schema=S)


def downgrade() -> None:
    op.drop_column("workloads", "requested_pods", schema=S)
    op.drop_column("workloads", "running_pods", schema=S)
