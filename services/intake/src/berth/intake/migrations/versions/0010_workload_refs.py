"""Each received workload's reference as it was accepted (creator, project, cluster, namespace,
queue, quota marks): ownership asks intake for it when it authorizes an action, instead of
following every submission and phase itself.

References ownership recorded before (``ownership.owners``, in the same database) are copied,
so that workloads received before the upgrade keep their exact reference; any other received
workload has its reference rebuilt from intake's copy of its project when it is asked for.

Revision ID: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

S = "intake"


def upgrade() -> None:
    op.add_column("workloads", sa.Column("ref", JSONB, nullable=True), schema=S)
    # Dynamic SQL: ownership's table may not exist (a fresh install, or ownership in another
    # database), or intake may not be allowed to read it.
    op.execute(
        """
        DO $$
        BEGIN
          IF to_regclass('ownership.owners') IS NOT NULL THEN
            EXECUTE 'UPDATE intake.workloads w SET ref = o.ref
                     FROM ownership.owners o
                     WHERE o.workload_id = w.id AND w.ref IS NULL';
          END IF;
        EXCEPTION WHEN insufficient_privilege THEN
          RAISE WARNING 'workloads.ref: ownership.owners not readable; not copied';
        END $$;
        """
    )


def downgrade() -> None:
    op.drop_column("workloads", "ref", schema=S)
