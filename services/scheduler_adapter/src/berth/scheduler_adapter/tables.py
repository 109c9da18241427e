"""The scheduler-adapter's schema: what it applied, the last phase it reported, and which
cluster's agent the schema belongs to."""

from sqlalchemy import Column, DateTime, Float, Integer, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from berth.shared.db import service_metadata

SCHEMA = "scheduler_adapter"
metadata = service_metadata(SCHEMA)

workloads = Table(
    "workloads",
    metadata,
    Column("workload_id", Text, primary_key=True),
    Column("ref", JSONB, nullable=False),
    Column("manifests", JSONB, nullable=False),
    Column("desired", Text, nullable=False, server_default="Running"),
    Column("phase", Text, nullable=True),
    Column("phase_message", Text, nullable=False, server_default=""),
    # Where phase events join the workload's trace, and the causal chain they continue.
    Column("traceparent", Text, nullable=True),
    Column("correlation_id", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    # What the workload counts against its project's quota (see admission.py).
    Column("project", Text, nullable=True, index=True),
    Column("gpus", Float, nullable=False, server_default="0"),
)

# One row: the cluster whose agent keeps its state here. Two agents must never share a schema
# (their inboxes would swallow each other's events and a restart would re-apply the other
# cluster's workloads), so an agent refuses to start on another cluster's database.
agent = Table(
    "agent",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("cluster_id", Text, nullable=False),
    Column("since", DateTime(timezone=True), server_default=func.now(), nullable=False),
)
