"""Read side served over request-reply: the registered clusters and their config."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.cluster_sync.tables import clusters
from berth.contracts.queries import ClusterInfo, ClusterQuery, ClusterReply


async def get_clusters(query: ClusterQuery, *, engine: AsyncEngine) -> ClusterReply:
    stmt = select(clusters).order_by(clusters.c.cluster_id)
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
                desired=dict(r.desired or {}),
                nodePools=list(r.node_pools or []),
                gpus=r.gpus,
                lastReportAt=r.last_report_at,
            )
            for r in rows
        ]
    )
