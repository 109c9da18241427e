"""The inbox's content digest: an event id reused for other content is told from a redelivery.

Revision ID: 0004
"""

from alembic import op

from berth.shared.migrations import add_inbox_digest, drop_inbox_digest

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "ownership"


def upgrade() -> None:
    add_inbox_digest(op, S)


def downgrade() -> None:
    drop_inbox_digest(op, S)
