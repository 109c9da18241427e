"""Policies, one per workload type and scope, with a version that grows with every change.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "policy"


def upgrade() -> None:
    # One sequence for every policy: a version read with a branch tells which change it reflects.
    op.execute(sa.schema.CreateSequence(sa.Sequence("policy_version_seq", schema=S)))
    op.create_table(
        "policies",
        sa.Column("policy_type", sa.Text, primary_key=True),
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("scope_id", sa.Text, primary_key=True),
        # Where the scope sits in the tree, for the ownership check of narrower/broader scopes.
        sa.Column("cluster_id", sa.Text, nullable=True),
        sa.Column("department_id", sa.Text, nullable=True),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("policies", schema=S)
    op.execute(sa.schema.DropSequence(sa.Sequence("policy_version_seq", schema=S)))
