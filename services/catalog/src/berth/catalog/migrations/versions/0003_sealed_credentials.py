"""Credential values encrypted at rest; the key each cluster's agent seals values to.

The values an older install kept in clear move to ``legacy_values``; the catalog encrypts them
with its storage key when it starts (a migration has no access to the key provider) and empties
that column.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "catalog"


def upgrade() -> None:
    op.alter_column(
        "credential_values",
        "secret_values",
        new_column_name="legacy_values",
        nullable=True,
        schema=S,
    )
    op.add_column("credential_values", sa.Column("key_id", sa.Text, nullable=True), schema=S)
    op.add_column(
        "credential_values", sa.Column("ciphertext", sa.LargeBinary, nullable=True), schema=S
    )
    op.create_table(
        "cluster_keys",
        sa.Column("cluster_id", sa.Text, primary_key=True),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        schema=S,
    )


def downgrade() -> None:
    # Encrypted values cannot go back to clear here: they are dropped with their columns.
    op.drop_table("cluster_keys", schema=S)
    op.execute(f"DELETE FROM {S}.credential_values WHERE legacy_values IS NULL")
    op.drop_column("credential_values", "ciphertext", schema=S)
    op.drop_column("credential_values", "key_id", schema=S)
    op.alter_column(
        "credential_values",
        "legacy_values",
        new_column_name="secret_values",
        nullable=False,
        schema=S,
    )
