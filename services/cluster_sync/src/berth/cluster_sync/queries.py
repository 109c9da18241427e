"""Read side served over request-reply: the registered clusters and their config."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.cluster_sync.tables import clusters, desired_configs
from berth.contracts.queries import ClusterInfo, ClusterQuery, ClusterReply


async def get_clusters(query: ClusterQuery, *, engine: AsyncEngine) -> ClusterReply:
    stmt = (
        select(clusters, desired_configs.c.settings)
        .select_from(
            clusters.outerjoin(
                desired_configs, desired_configs.c.cluster_id == clusters.c.cluster_id
            )
        )
        .order_by(clusters.c.cluster_id)
    )
    if query.clusterId:
        stmt = stmt.where(clusters.c.cluster_id == query.clusterId)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return ClusterReply(
        clusters=[
            ClusterInfo(
                clusterId=r.cluster_id,
                backend=r.backend,
                config=dict(r.config or {}),
                desired=dict(r.settings or {}),
                nodePools=list(r.node_pools or []),
                gpus=r.gpus,
                capabilities=dict(r.capabilities or {}),
                lastReportAt=r.last_report_at,
                connected=r.connected,
            )
            for r in rows
        ]
    )
