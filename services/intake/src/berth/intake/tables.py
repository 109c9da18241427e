"""Intake's schema: every submission and the workload read model served to the CLI and UIs."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from berth.shared.access import access_rules_table
from berth.shared.db import service_metadata

SCHEMA = "intake"
metadata = service_metadata(SCHEMA)

# A name may be reused once the workload holding it was rejected or deleted.
LIVE = text("status NOT IN ('rejected', 'Deleted')")

workloads = Table(
    "workloads",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=True),
    Column("project", Text, nullable=True),
    Column("kind", Text, nullable=True),
    Column("cluster_id", Text, nullable=True),
    Column("created_by", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("phase", Text, nullable=True),
    Column("phase_message", Text, nullable=False, server_default=""),
    Column("phase_at", DateTime(timezone=True), nullable=True),
    Column("trace_id", Text, nullable=True),
    Column("submission", JSONB, nullable=False),
    Column("effective_spec", JSONB, nullable=True),
    Column("issues", JSONB, nullable=False, server_default="[]"),
    Column("submitted_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("running_pods", Integer, nullable=True),
    Column("requested_pods", Integer, nullable=True),
    # sha256 of the submission as it came: a retry (same content) is skipped, another
    # submission under the same id is refused.
    Column("content_hash", Text, nullable=True),
    # The WorkloadRef a received workload was accepted with (unset for one intake rejected):
    # what ownership asks for when it authorizes an action on it.
    Column("ref", JSONB(none_as_null=True), nullable=True),
    Index("uq_workloads_live_name", "project", "name", unique=True, postgresql_where=LIVE),
    # The list's order within a project (queries.list_workloads): a page reads only its rows.
    Index("ix_workloads_project_submitted_at", "project", text("submitted_at DESC"), "id"),
)

phase_history = Table(
    "phase_history",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("workload_id", Text, nullable=False, index=True),
    Column("phase", Text, nullable=False),
    Column("message", Text, nullable=False, server_default=""),
    Column("at", DateTime(timezone=True), nullable=False),
)

# The catalog assets each received workload was resolved from, recorded with the workload, so
# that the catalog can ask, before deleting an asset, which live workloads use it.
workload_assets = Table(
    "workload_assets",
    metadata,
    Column("asset_id", Text, primary_key=True),
    Column("workload_id", Text, primary_key=True),
    Index("ix_workload_assets_workload_id", "workload_id"),
)

# What intake has seen of the catalog (projects and assets, as CatalogAssetChangedV1 carries them),
# so that submissions still resolve while the catalog service is down. A deleted entry stays, as
# a tombstone, so that an older event arriving late cannot bring it back.
catalog_entries = Table(
    "catalog_entries",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("asset", JSONB, nullable=False),
    Column("deleted", Boolean, nullable=False, server_default="false"),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Index("ix_catalog_entries_kind_name", "kind", "name"),
)

# What intake has seen of cluster-sync's registry (ClusterUpdatedV1): a submission's clusterId
# must name one of these clusters, checked without asking cluster-sync. The rest of the record
# (node pools, GPUs, config, capabilities, whatever else the agent reports) is kept for checks
# that depend on the cluster.
clusters = Table(
    "clusters",
    metadata,
    Column("cluster_id", Text, primary_key=True),
    Column("backend", Text, nullable=False),
    Column("config", JSONB, nullable=False),
    Column("node_pools", JSONB, nullable=False, server_default="[]"),
    Column("gpus", Integer, nullable=False, server_default="0"),
    Column("capabilities", JSONB, nullable=False, server_default="{}"),
    Column("extra", JSONB, nullable=False, server_default="{}"),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    # False while cluster-sync says its agent stopped reporting: its workloads show Unknown.
    Column("connected", Boolean, nullable=False, server_default="true"),
)

# The access rules, as the catalog announces them (berth.shared.access).
access_rules = access_rules_table(metadata)
