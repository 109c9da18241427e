"""The service's copy of the access rules (see berth.shared.access).

Revision ID: 0004
"""

from alembic import op

from berth.shared.access import create_access_rules, drop_access_rules

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "cluster_sync"


def upgrade() -> None:
    create_access_rules(op, S)


def downgrade() -> None:
    drop_access_rules(op, S)
