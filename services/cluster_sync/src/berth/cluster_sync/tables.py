"""cluster-sync's schema: registered clusters with what their agents last reported, the config
administrators want for each cluster, and placements."""

from sqlalchemy import Boolean, Column, DateTime, Integer, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from berth.shared.access import access_rules_table
from berth.shared.db import service_metadata

SCHEMA = "cluster_sync"
metadata = service_metadata(SCHEMA)

# A cluster is registered by its agent's first report; nothing else creates a row here.
clusters = Table(
    "clusters",
    metadata,
    Column("cluster_id", Text, primary_key=True),
    Column("backend", Text, nullable=False),
    Column("config", JSONB, nullable=False),
    Column("node_pools", JSONB, nullable=False, server_default="[]"),
    Column("gpus", Integer, nullable=False, server_default="0"),
    Column("capabilities", JSONB, nullable=False, server_default="{}"),
    # Whatever else the report carries, kept as reported.
    Column("extra", JSONB, nullable=False, server_default="{}"),
    # Whether cluster.updated has told the other services of this cluster yet.
    Column("announced", Boolean, nullable=False, server_default="false"),
    Column("registered_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("last_report_at", DateTime(timezone=True), nullable=False),
    # False once the agent stopped reporting (see handlers.mark_disconnected).
    Column("connected", Boolean, nullable=False, server_default="true"),
)

# The desired state: settings accepted from config requests, merged per cluster. It outlives any
# agent: each report that disagrees with it makes cluster-sync send it down again.
desired_configs = Table(
    "desired_configs",
    metadata,
    Column("cluster_id", Text, primary_key=True),
    Column("settings", JSONB, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
)

# No longer written: nothing read it (the scheduler-adapter keeps what it applied, intake where
# each workload runs), so cluster-sync does not follow workload.scheduled. Kept for a release,
# while the previous version still writes it during a rolling upgrade.
placements = Table(
    "placements",
    metadata,
    Column("workload_id", Text, primary_key=True),
    Column("cluster_id", Text, nullable=False, index=True),
    Column("namespace", Text, nullable=False),
    Column("objects", JSONB, nullable=False),
    Column("scheduled_at", DateTime(timezone=True), nullable=False),
)

# The access rules, as the catalog announces them (berth.shared.access).
access_rules = access_rules_table(metadata)
