"""An index in the order a project's workloads are listed (newest first), so that a page of
``berth list -p PROJECT`` reads that page, not every workload the project ever had.

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

S = "intake"


def upgrade() -> None:
    op.create_index(
        "ix_workloads_project_submitted_at",
        "workloads",
        ["project", sa.text("submitted_at DESC"), "id"],
        schema=S,
    )


def downgrade() -> None:
    op.drop_index("ix_workloads_project_submitted_at", "workloads", schema=S)
