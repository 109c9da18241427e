"""Ownership's schema: which clusters protect ownership, and its copy of the access rules."""

from sqlalchemy import Boolean, Column, DateTime, Table, Text

from berth.shared.access import access_rules_table
from berth.shared.db import service_metadata

SCHEMA = "ownership"
metadata = service_metadata(SCHEMA)

# ``owners`` and ``workload_phases`` (migrations 0001, 0003) are no longer written: intake says
# who created a workload, where it lives and its phase when an action is requested
# (berth.ownership.workloads). They stay for a release: the previous version still writes them
# during a rolling upgrade, and intake's migration 0010 copies each workload's reference from
# ``owners``.

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

# The access rules, as the catalog announces them (berth.shared.access).
access_rules = access_rules_table(metadata)
