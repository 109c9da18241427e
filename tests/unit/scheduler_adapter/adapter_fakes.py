"""The scheduler-adapter's store in memory and a cluster that only records what it is asked,
for handler tests: same ports as the PostgreSQL store and the cluster backends."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from berth.scheduler_adapter.backend import Listing, ObjectKey, WorkloadSnapshot, object_key
from berth.scheduler_adapter.store import HELD, AppliedWorkload, PhaseChange
from berth.shared.errors import PermanentError
from berth.shared.testing import InMemoryTable


class InMemoryAdapterStore:
    """Workloads by id, in arrival order (the order held workloads are admitted in)."""

    def __init__(self, cluster_id: str | None = None) -> None:
        self.workloads: InMemoryTable[str, AppliedWorkload] = InMemoryTable()
        self.cluster_id = cluster_id

    def snapshot(self) -> Any:
        return self.workloads.snapshot(), self.cluster_id

    def restore(self, snapshot: Any) -> None:
        rows, self.cluster_id = snapshot
        self.workloads.restore(rows)

    async def usage(self, projects: Iterable[str]) -> dict[str, float]:
        names = set(projects)
        used: dict[str, float] = {}
        for row in self.workloads:
            if row.project in names and row.holds_quota:
                used[row.project] = used.get(row.project, 0.0) + row.gpus
        return used

    async def add(self, rows: Sequence[AppliedWorkload]) -> None:
        for row in rows:
            self.workloads.insert_new(row.workload_id, row)

    async def current(
        self, ids: Iterable[str], *, lock: bool = False, manifests: bool = True
    ) -> dict[str, AppliedWorkload]:
        found = {i: row for i in ids if (row := self.workloads.get(i)) is not None}
        if not manifests:
            return {i: dataclasses.replace(row, manifests=[]) for i, row in found.items()}
        return found

    async def set_phases(self, changes: Sequence[PhaseChange]) -> None:
        for change in changes:
            row = self.workloads.get(change.workload_id)
            if row is None:
                continue
            update: dict[str, Any] = {"phase": change.phase, "phase_message": change.message}
            if change.desired is not None:
                update["desired"] = change.desired
            self.workloads.put(change.workload_id, dataclasses.replace(row, **update))

    async def held(self, projects: Iterable[str]) -> list[AppliedWorkload]:
        names = set(projects)
        return [r for r in self.workloads if r.project in names and r.desired == HELD]

    async def admit(self, ids: Sequence[str]) -> None:
        for i in ids:
            row = self.workloads.get(i)
            if row is not None:
                self.workloads.put(i, dataclasses.replace(row, desired="Running", phase_message=""))

    async def unfinished(self) -> list[AppliedWorkload]:
        return [r for r in self.workloads if r.unfinished]

    async def claim_cluster(self, cluster_id: str) -> str:
        if self.cluster_id is None:
            self.cluster_id = cluster_id
        return self.cluster_id


class RecordingCluster:
    """A cluster backend that records what it is asked and refuses what it is told to."""

    name = "recording"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})
        self.applied: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str]] = []
        self.refuse: dict[str, str] = {}  # action -> the cluster's reason
        # What its listing holds, and of which kinds (None: every kind).
        self.present: set[ObjectKey] = set()
        self.listed_kinds: set[tuple[str, str]] | None = None
        self.adopted: list[dict[str, Any]] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def apply(self, objects: list[dict[str, Any]]) -> None:
        self.applied.extend(objects)

    async def apply_secrets(self, secrets: list[dict[str, Any]]) -> None:
        self.applied.extend(secrets)

    def hold(self, *objects: dict[str, Any]) -> None:
        """The cluster holds these objects (applied before a restart)."""
        self.present.update(object_key(o) for o in objects)

    async def listed(self) -> Listing:
        kinds = None if self.listed_kinds is None else frozenset(self.listed_kinds)
        return Listing(kinds=kinds, objects=frozenset(self.present))

    async def adopt(self, objects: list[dict[str, Any]]) -> None:
        self.adopted.extend(objects)

    async def _act(self, action: str, workload_id: str) -> None:
        if action in self.refuse:
            raise PermanentError(self.refuse[action])
        self.calls.append((action, workload_id))

    async def delete(self, namespace: str, workload_id: str) -> None:
        await self._act("delete", workload_id)

    async def suspend(self, namespace: str, workload_id: str) -> None:
        await self._act("suspend", workload_id)

    async def resume(self, namespace: str, workload_id: str) -> None:
        await self._act("resume", workload_id)

    async def snapshots(self) -> AsyncIterator[list[WorkloadSnapshot]]:
        return
        yield

    async def read_config(self) -> dict[str, Any]:
        return dict(self.config)

    async def set_config(self, settings: dict[str, Any]) -> None:
        self.config.update(settings)

    def applied_ids(self) -> set[str]:
        return {
            o["metadata"]["labels"]["berth.dev/workload-id"]
            for o in self.applied
            if "berth.dev/workload-id" in o.get("metadata", {}).get("labels", {})
        }
