"""The catalog assets each workload was resolved from; the catalog asks intake who uses an asset
instead of following every submission and phase itself.

Rows the catalog recorded before (``catalog.asset_usage``, in the same database) are copied, so
that an asset a running workload uses stays protected across the upgrade.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

S = "intake"


def upgrade() -> None:
    op.create_table(
        "workload_assets",
        sa.Column("asset_id", sa.Text, nullable=False),
        sa.Column("workload_id", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("asset_id", "workload_id"),
        schema=S,
    )
    op.create_index("ix_workload_assets_workload_id", "workload_assets", ["workload_id"], schema=S)
    # Dynamic SQL: the catalog's table may not exist (a fresh install, or a catalog in another
    # database), or intake may not be allowed to read it.
    op.execute(
        """
        DO $$
        BEGIN
          IF to_regclass('catalog.asset_usage') IS NOT NULL THEN
            EXECUTE 'INSERT INTO intake.workload_assets (asset_id, workload_id)
                     SELECT asset_id, workload_id FROM catalog.asset_usage
                     ON CONFLICT DO NOTHING';
          END IF;
        EXCEPTION WHEN insufficient_privilege THEN
          RAISE WARNING 'workload_assets: catalog.asset_usage not readable; not copied';
        END $$;
        """
    )


def downgrade() -> None:
    op.drop_table("workload_assets", schema=S)
