"""Intake's projection of the catalog.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "intake"


def upgrade() -> None:
    op.create_table(
        "catalog_entries",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("asset", JSONB, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("ix_catalog_entries_kind_name", "catalog_entries", ["kind", "name"], schema=S)


def downgrade() -> None:
    op.drop_table("catalog_entries", schema=S)
