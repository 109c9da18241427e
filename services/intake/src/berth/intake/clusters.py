"""Intake's copy of cluster-sync's cluster registry, fed by ``ClusterUpdatedV1``.

A submission's clusterId is checked against it: no round trip, and it works whether cluster-sync
is up or not. A cluster that has not registered yet is unknown here, so a submission for it is
rejected until its agent has reported (and cluster-sync has announced it).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.contracts import runnable
from berth.contracts.capabilities import ClusterCapabilities
from berth.contracts.events import ClusterRecord, Issue
from berth.contracts.queries import ClusterListQuery, ClusterListReply
from berth.contracts.workload import WorkloadSubmission
from berth.intake.tables import clusters

log = logging.getLogger(__name__)

# What intake knows of each registered cluster for its checks: its reported capabilities (None
# when its agent reports none, which leaves only the rules that hold on every cluster).
Registry = dict[str, ClusterCapabilities | None]

RECORD_COLUMNS = (
    "backend",
    "config",
    "node_pools",
    "gpus",
    "capabilities",
    "extra",
    "reported_at",
    "connected",
)


def unregistered(cluster_id: str, known: set[str]) -> Issue | None:
    """The issue with a workload's cluster when it is not a registered one."""
    if cluster_id in known:
        return None
    listed = ", ".join(sorted(known)) or "none"
    return Issue(
        field="clusterId", details=f'cluster "{cluster_id}" is not registered (known: {listed})'
    )


def capabilities_of(cluster_id: str, raw: dict[str, Any] | None) -> ClusterCapabilities | None:
    if not raw:
        return None
    try:
        return ClusterCapabilities.model_validate(raw)
    except ValidationError as exc:
        # The agent checks again before applying anything; intake must not refuse every
        # submission for a cluster because of a report it cannot read.
        log.warning("cluster %s reported capabilities intake cannot read: %s", cluster_id, exc)
        return None


def cluster_issues(submission: WorkloadSubmission, cluster_id: str, known: Registry) -> list[Issue]:
    """Why ``cluster_id`` cannot run ``submission``: not registered, or not able to run it as
    asked (the same check its agent makes before applying anything)."""
    if cluster_id not in known:
        issue = unregistered(cluster_id, set(known))
        return [issue] if issue else []
    return runnable.check(submission, known[cluster_id], cluster_id)


async def list_clusters(_query: ClusterListQuery, *, engine: AsyncEngine) -> ClusterListReply:
    async with engine.connect() as conn:
        rows = await conn.execute(select(clusters).order_by(clusters.c.cluster_id))
    return ClusterListReply(
        clusters=[
            ClusterRecord(
                clusterId=r.cluster_id,
                backend=r.backend,
                config=r.config,
                nodePools=r.node_pools,
                gpus=r.gpus,
                capabilities=r.capabilities,
                extra=r.extra,
                reportedAt=r.reported_at,
                connected=r.connected,
            )
            for r in rows
        ]
    )
