"""The catalog's schema: organisation (departments, projects, node pools) and assets."""

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    LargeBinary,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from berth.shared.access import access_rules_table
from berth.shared.db import service_metadata

SCHEMA = "catalog"
metadata = service_metadata(SCHEMA)

departments = Table(
    "departments",
    metadata,
    Column("name", Text, primary_key=True),
    Column("cluster_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("quota", JSONB, nullable=False, server_default="[]"),
)

projects = Table(
    "projects",
    metadata,
    Column("name", Text, primary_key=True),
    Column("department", Text, ForeignKey("catalog.departments.name"), nullable=True),
    Column("cluster_id", Text, nullable=False),
    Column("namespace", Text, nullable=False, unique=True),
    Column("queue", Text, nullable=False),
    Column("default_node_pools", JSONB, nullable=False, server_default="[]"),
    Column("quota", JSONB, nullable=False, server_default="[]"),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

node_pools = Table(
    "node_pools",
    metadata,
    Column("name", Text, primary_key=True),
    Column("cluster_id", Text, nullable=False),
    Column("label_key", Text, nullable=False),
    Column("label_value", Text, nullable=False),
    Column("placement", Text, nullable=False, server_default="binpack"),
    Column("node_types", JSONB, nullable=False, server_default="[]"),
)

assets = Table(
    "assets",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("scope_id", Text, nullable=False, server_default=""),
    Column("spec", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("status", Text, nullable=True),
    Column("status_reason", Text, nullable=False, server_default=""),
    Column("created_by", Text, nullable=False, server_default=""),
    UniqueConstraint("kind", "scope", "scope_id", "name", name="uq_assets_kind_scope_name"),
)

# Credential values, apart from the assets and encrypted (see keys.py): only their delivery to
# a cluster's agent reads this table; no query, answer or event of the catalog selects from it.
credential_values = Table(
    "credential_values",
    metadata,
    Column("asset_id", Text, ForeignKey("catalog.assets.id", ondelete="CASCADE"), primary_key=True),
    # The storage key that encrypted the value, and the value (a JSON object of key to value).
    Column("key_id", Text, nullable=True),
    Column("ciphertext", LargeBinary, nullable=True),
    # Values an older install stored in clear; encrypted and emptied when the catalog starts.
    Column("legacy_values", JSONB(none_as_null=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

# The key each cluster's agent reported (relayed by cluster-sync): credential values for that
# cluster are sealed to it and to nothing a request names.
cluster_keys = Table(
    "cluster_keys",
    metadata,
    Column("cluster_id", Text, primary_key=True),
    Column("key_id", Text, nullable=False),
    Column("public_key", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

# asset_usage (migration 0002) is no longer written: intake records which workloads use which
# assets, and the catalog asks it (rpc.intake.workloads.using-assets.v1). Intake's migration 0009
# copies the rows; a later catalog migration drops the table.

# The access rules, as the catalog announces them (berth.shared.access).
access_rules = access_rules_table(metadata)
