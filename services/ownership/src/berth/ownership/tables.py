"""Ownership's schema: who created each workload, and which clusters protect ownership."""

from sqlalchemy import Boolean, Column, DateTime, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from berth.shared.access import access_rules_table
from berth.shared.db import service_metadata

SCHEMA = "ownership"
metadata = service_metadata(SCHEMA)

owners = Table(
    "owners",
    metadata,
    Column("workload_id", Text, primary_key=True),
    Column("cluster_id", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("ref", JSONB, nullable=False),
    Column("recorded_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

# Per cluster: the protection its agent last reported (through cluster-sync's config-changed)
# and the one administrators asked for (cluster-sync's config-desired); either may be unknown.
clusters = Table(
    "clusters",
    metadata,
    Column("cluster_id", Text, primary_key=True),
    Column("protection", Boolean, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=True),
    Column("desired_protection", Boolean, nullable=True),
    Column("desired_at", DateTime(timezone=True), nullable=True),
)

# Each workload's latest phase as its cluster reported it: which actions make sense now.
workload_phases = Table(
    "workload_phases",
    metadata,
    Column("workload_id", Text, primary_key=True),
    Column("phase", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# The access rules, as the catalog announces them (berth.shared.access).
access_rules = access_rules_table(metadata)
