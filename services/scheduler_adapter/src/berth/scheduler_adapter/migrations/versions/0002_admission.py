"""Project and GPUs of each workload, for admission within the project's quota.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "scheduler_adapter"


def upgrade() -> None:
    op.add_column("workloads", sa.Column("project", sa.Text), schema=S)
    op.add_column(
        "workloads", sa.Column("gpus", sa.Float, nullable=False, server_default="0"), schema=S
    )
    op.execute(f"UPDATE {S}.workloads SET project = ref->>'project'")
    op.create_index("ix_workloads_project", "workloads", ["project"], schema=S)


def downgrade() -> None:
    op.drop_index("ix_workloads_project", table_name="workloads", schema=S)
    op.drop_column("workloads", "gpus", schema=S)
    op.drop_column("workloads", "project", schema=S)
