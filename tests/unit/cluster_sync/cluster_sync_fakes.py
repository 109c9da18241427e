"""The cluster-sync store in memory, for handler tests: same port as the PostgreSQL store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from berth.cluster_sync.store import DesiredChange, Registered
from berth.contracts.events import ClusterRecord
from berth.shared.testing import InMemoryTable


class InMemoryClusterSyncStore:
    def __init__(self) -> None:
        self.registry: InMemoryTable[str, Registered] = InMemoryTable()
        self.desired_configs: InMemoryTable[str, dict[str, Any]] = InMemoryTable()

    async def clusters(self, cluster_ids: Iterable[str]) -> dict[str, Registered]:
        return {i: r for i in set(cluster_ids) if (r := self.registry.get(i)) is not None}

    async def save_clusters(self, records: Sequence[ClusterRecord]) -> None:
        for record in records:
            self.registry.put(record.clusterId, Registered(record, announced=True))

    async def disconnect(self, silent_since: datetime) -> list[ClusterRecord]:
        marked = []
        for registered in list(self.registry):
            record = registered.record
            if record.connected and record.reportedAt < silent_since:
                record = record.model_copy(update={"connected": False})
                self.registry.put(record.clusterId, Registered(record, registered.announced))
                marked.append(record)
        return marked

    async def desired(self, cluster_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {
            i: dict(d) for i in set(cluster_ids) if (d := self.desired_configs.get(i)) is not None
        }

    async def merge_desired(self, changes: Sequence[DesiredChange]) -> None:
        for change in changes:
            old = self.desired_configs.get(change.cluster_id) or {}
            self.desired_configs.put(change.cluster_id, {**old, **change.settings})

    def snapshot(self) -> Any:
        return (self.registry.snapshot(), self.desired_configs.snapshot())

    def restore(self, snapshot: Any) -> None:
        registry, desired = snapshot
        self.registry.restore(registry)
        self.desired_configs.restore(desired)
