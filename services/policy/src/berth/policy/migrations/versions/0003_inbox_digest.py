"""The inbox's content digest: an event id reused for other content is told from a redelivery.

Revision ID: 0003
"""

from alembic import op

from berth.shared.migrations import add_inbox_digest, drop_inbox_digest

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "policy"


def upgrade() -> None:
    add_inbox_digest(op, S)


def downgrade() -> None:
    drop_inbox_digest(op, S)
