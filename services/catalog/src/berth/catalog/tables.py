"""The catalog's schema: organisation (departments, projects, node pools) and assets."""

from sqlalchemy import Column, DateTime, ForeignKey, Table, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB

from berth.shared.db import service_metadata

SCHEMA = "catalog"
metadata = service_metadata(SCHEMA)

departments = Table(
    "departments",
    metadata,
    Column("name", Text, primary_key=True),
    Column("cluster_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
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
    UniqueConstraint("kind", "scope", "scope_id", "name", name="uq_assets_kind_scope_name"),
)
