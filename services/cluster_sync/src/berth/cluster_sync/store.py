"""cluster-sync's registry: the store port the handlers use and its PostgreSQL adapter (batched
Core statements)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from berth.cluster_sync.tables import clusters, desired_configs
from berth.contracts.events import ClusterConfig, ClusterRecord
from berth.shared.store import SqlStore


@dataclass(frozen=True)
class Registered:
    """A registered cluster: the record of its latest report, and whether cluster.updated has
    told the other services of it yet."""

    record: ClusterRecord
    announced: bool


@dataclass(frozen=True)
class DesiredChange:
    """Settings an administrator asked for: merged into the cluster's desired config."""

    cluster_id: str
    settings: dict[str, Any]
    at: datetime


class ClusterSyncStore(Protocol):
    """What the handlers read and write, inside the transaction of their unit of work."""

    async def clusters(self, cluster_ids: Iterable[str]) -> dict[str, Registered]: ...

    async def save_clusters(self, records: Sequence[ClusterRecord]) -> None:
        """Register or replace each cluster's record (one per cluster), as announced."""

    async def disconnect(self, silent_since: datetime) -> list[ClusterRecord]:
        """Mark every connected cluster whose last report is older than ``silent_since``
        disconnected, in one statement (a report saved meanwhile keeps its cluster connected);
        their records, as now stored."""

    async def desired(self, cluster_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The desired config of each cluster that has one."""

    async def merge_desired(self, changes: Sequence[DesiredChange]) -> None:
        """Merge settings into the desired configs, in order (a later setting of the same
        cluster wins); a cluster that has not registered yet keeps them for when it does."""


class SqlClusterSyncStore(SqlStore):
    """The cluster-sync store in PostgreSQL, on one connection (one transaction)."""

    async def clusters(self, cluster_ids: Iterable[str]) -> dict[str, Registered]:
        ids = list(set(cluster_ids))
        if not ids:
            return {}
        rows = await self._conn.execute(select(clusters).where(clusters.c.cluster_id.in_(ids)))
        return {r.cluster_id: Registered(_record(r), r.announced) for r in rows}

    async def save_clusters(self, records: Sequence[ClusterRecord]) -> None:
        await self.upsert(
            clusters,
            [
                {
                    "cluster_id": r.clusterId,
                    "backend": r.backend,
                    "config": r.config.model_dump(mode="json"),
                    "node_pools": r.nodePools,
                    "gpus": r.gpus,
                    "capabilities": r.capabilities,
                    "extra": r.extra,
                    "last_report_at": r.reportedAt,
                    "announced": True,
                    "connected": r.connected,
                }
                for r in records
            ],
            update=(
                "backend",
                "config",
                "node_pools",
                "gpus",
                "capabilities",
                "extra",
                "last_report_at",
                "announced",
                "connected",
            ),
        )

    async def disconnect(self, silent_since: datetime) -> list[ClusterRecord]:
        rows = await self._conn.execute(
            update(clusters)
            .where(clusters.c.connected, clusters.c.last_report_at < silent_since)
            .values(connected=False)
            .returning(*clusters.c)
        )
        return [_record(r) for r in rows]

    async def desired(self, cluster_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(set(cluster_ids))
        if not ids:
            return {}
        rows = await self._conn.execute(
            select(desired_configs).where(desired_configs.c.cluster_id.in_(ids))
        )
        return {r.cluster_id: dict(r.settings) for r in rows}

    async def merge_desired(self, changes: Sequence[DesiredChange]) -> None:
        if not changes:
            return
        stmt = insert(desired_configs)
        # executemany runs one statement per row, in order: two changes of one cluster in a batch
        # merge one after the other.
        await self._conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[desired_configs.c.cluster_id],
                set_={
                    "settings": desired_configs.c.settings.op("||")(stmt.excluded.settings),
                    "requested_at": stmt.excluded.requested_at,
                },
            ),
            [
                {"cluster_id": c.cluster_id, "settings": c.settings, "requested_at": c.at}
                for c in changes
            ],
        )


def _record(row: Any) -> ClusterRecord:
    return ClusterRecord(
        clusterId=row.cluster_id,
        backend=row.backend,
        config=ClusterConfig.model_validate(row.config),
        nodePools=list(row.node_pools),
        gpus=row.gpus,
        capabilities=dict(row.capabilities),
        extra=dict(row.extra),
        reportedAt=row.last_report_at,
        connected=row.connected,
    )
