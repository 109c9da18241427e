"""Policy's schema: the outcome of every evaluation, and the stored policies."""

from sqlalchemy import BigInteger, Column, DateTime, Sequence, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from berth.shared.access import access_rules_table
from berth.shared.db import service_metadata

SCHEMA = "policy"
metadata = service_metadata(SCHEMA)

evaluations = Table(
    "evaluations",
    metadata,
    Column("workload_id", Text, primary_key=True),
    Column("outcome", Text, nullable=False),
    Column("effective_spec", JSONB, nullable=True),
    Column("issues", JSONB, nullable=False, server_default="[]"),
    Column("evaluated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

# A policy per workload type and scope (see migrations/versions/0002_policies.py).
version_seq = Sequence("policy_version_seq", metadata=metadata, schema=SCHEMA)

policies = Table(
    "policies",
    metadata,
    Column("policy_type", Text, primary_key=True),
    Column("scope", Text, primary_key=True),
    Column("scope_id", Text, primary_key=True),
    Column("cluster_id", Text, nullable=True),
    Column("department_id", Text, nullable=True),
    Column("name", Text, nullable=True),
    Column("document", JSONB, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_by", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

# The access rules, as the catalog announces them (berth.shared.access).
access_rules = access_rules_table(metadata)
