"""Intake's store in memory, for handler tests: the same port as the PostgreSQL store, with the
same answers (tests/integration/intake/test_store.py runs both)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from berth.contracts.access import AccessRule
from berth.contracts.catalog import AssetRef, AssetView
from berth.contracts.events import TERMINAL_PHASES, ClusterRecord
from berth.contracts.queries import ProjectInfo
from berth.intake import clusters, projection, quota
from berth.intake.store import (
    CatalogEntry,
    IntakeStore,
    Judging,
    PhaseChange,
    TargetRow,
    WorkloadRow,
)
from berth.shared.access import InMemoryAccessRules
from berth.shared.testing import InMemoryTable
from tests.unit.access_builders import rule

NOT_LIVE = ("rejected", "Deleted")
FINISHED = ("Completed", "Failed")


@dataclass(frozen=True)
class StoredWorkload:
    """A row of the workload read model: the record, then what policy and the cluster said."""

    row: WorkloadRow
    status: str
    issues: list[dict[str, Any]]
    effective_spec: dict[str, Any] | None = None
    phase: str | None = None
    phase_message: str = ""
    phase_at: datetime | None = None

    @property
    def live(self) -> bool:
        return self.status not in NOT_LIVE


class InMemoryIntakeStore:
    """Workloads by id, phase history in arrival order, the catalog by asset id, clusters by id."""

    def __init__(self, rules: Sequence[AccessRule] | None = None) -> None:
        # The access rules in force: user@example.com may submit everywhere when not given.
        self.rules = InMemoryAccessRules(
            [rule("user@example.com", "L1 researcher")] if rules is None else rules
        )
        self.workloads: InMemoryTable[str, StoredWorkload] = InMemoryTable()
        self.history: InMemoryTable[int, PhaseChange] = InMemoryTable()
        self.catalog: InMemoryTable[str, CatalogEntry] = InMemoryTable()
        self.clusters: InMemoryTable[str, ClusterRecord] = InMemoryTable()

    def of(self, _unit: object) -> IntakeStore:
        """The seam handlers take (``store=``): this store, whatever the unit."""
        return self

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[IntakeStore]:
        """A ``Reader`` of this store."""
        yield self

    def _tables(self) -> tuple[InMemoryTable[Any, Any], ...]:
        return (self.workloads, self.history, self.catalog, self.clusters)

    def snapshot(self) -> list[Any]:
        return [*(t.snapshot() for t in self._tables()), self.rules.snapshot()]

    def restore(self, snapshot: list[Any]) -> None:
        *tables, rules = snapshot
        for table, saved in zip(self._tables(), tables, strict=True):
            table.restore(saved)
        self.rules.restore(rules)

    def workload(self, workload_id: str) -> StoredWorkload | None:
        return self.workloads.get(workload_id)

    def phases_of(self, workload_id: str) -> list[str]:
        return [c.phase for c in self.history if c.workload_id == workload_id]

    # --- reads ---------------------------------------------------------------------------------

    def _taken(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        wanted = set(keys)
        return {
            (w.row.project, w.row.name)
            for w in self.workloads
            if w.live
            and w.row.project is not None
            and w.row.name is not None
            and (w.row.project, w.row.name) in wanted
        }

    def _entries(self, keys: Sequence[tuple[str, str]]) -> list[AssetView]:
        wanted = set(keys)
        return [
            e.asset
            for e in self.catalog
            if not e.deleted and (e.asset.kind, e.asset.name) in wanted
        ]

    async def usage(self, projects: Sequence[str]) -> dict[str, float]:
        used: dict[str, float] = {}
        for w in self.workloads:
            project = w.row.project
            if project is not None and project in projects and w.live and w.phase not in FINISHED:
                gpus = quota.gpus(w.effective_spec or w.row.submission)
                used[project] = used.get(project, 0.0) + gpus
        return used

    async def judging(
        self, names: Sequence[tuple[str, str]], ids: Sequence[str], projects: Sequence[str]
    ) -> Judging:
        return Judging(
            taken=self._taken(names),
            known={i: w.row.content_hash for i in ids if (w := self.workloads.get(i)) is not None},
            pools={
                e.asset.name for e in self.catalog if e.asset.kind == "nodepool" and not e.deleted
            },
            registry={
                r.clusterId: clusters.capabilities_of(r.clusterId, r.capabilities)
                for r in self.clusters
            },
            quotas=quota.of_projects(self._entries([("project", n) for n in projects])),
            rules=await self.rules.access_rules(),
        )

    async def projects(self, names: Sequence[str]) -> dict[str, ProjectInfo]:
        views = self._entries([("project", n) for n in names])
        return {v.name: projection.project_info(v) for v in views}

    async def assets(self, refs: Sequence[AssetRef]) -> list[AssetView]:
        return self._entries([(r.kind, r.name) for r in refs])

    # --- writes --------------------------------------------------------------------------------

    async def action_targets(
        self, ids: Sequence[str], names: Sequence[tuple[str, str]]
    ) -> list[TargetRow]:
        # Insertion order stands for submission time: the latest recorded comes first.
        found = [
            TargetRow(
                workload_id=w.row.id,
                name=w.row.name or "",
                project=w.row.project or "",
                kind=w.row.kind or "",
                cluster_id=w.row.cluster_id,
                created_by=w.row.created_by,
                phase=w.phase,
                live=w.live,
                ref=w.row.ref,
            )
            for w in reversed(list(self.workloads))
            if w.row.cluster_id is not None
            and (w.row.id in ids or (w.row.project, w.row.name) in names)
        ]
        return sorted(found, key=lambda t: not t.live)

    async def record_workloads(self, rows: Sequence[WorkloadRow]) -> None:
        for row in rows:
            live = row.status not in NOT_LIVE
            # As the unique index on live (project, name) does under ON CONFLICT DO NOTHING.
            if live and self._taken([(row.project or "", row.name or "")]):
                continue
            self.workloads.insert_new(row.id, StoredWorkload(row, row.status, row.issues))

    async def approve(self, specs: Sequence[tuple[str, dict[str, Any]]]) -> None:
        for wid, spec in specs:
            w = self.workloads.get(wid)
            if w is not None and w.status == "received":
                self.workloads.put(
                    wid, dataclasses.replace(w, status="approved", effective_spec=spec)
                )

    async def reject(self, issues: Sequence[tuple[str, list[dict[str, Any]]]]) -> None:
        for wid, found in issues:
            w = self.workloads.get(wid)
            if w is not None:
                self.workloads.put(wid, dataclasses.replace(w, status="rejected", issues=found))

    async def record_phases(self, changes: Sequence[PhaseChange]) -> None:
        for change in changes:
            self.history.put(len(self.history), change)
        for change in changes:
            w = self.workloads.get(change.workload_id)
            if w is None or (w.phase_at is not None and w.phase_at > change.at):
                continue
            if w.phase in TERMINAL_PHASES:
                continue
            self.workloads.put(
                change.workload_id,
                dataclasses.replace(
                    w,
                    status=change.phase,
                    phase=change.phase,
                    phase_message=change.message,
                    phase_at=change.at,
                ),
            )

    async def record_catalog(self, entries: Sequence[CatalogEntry]) -> None:
        for entry in entries:
            stored = self.catalog.get(entry.asset.id)
            if stored is None or stored.changed_at <= entry.changed_at:
                self.catalog.put(entry.asset.id, entry)

    async def record_clusters(self, records: Sequence[ClusterRecord]) -> None:
        for record in records:
            stored = self.clusters.get(record.clusterId)
            if stored is None or stored.reportedAt <= record.reportedAt:
                self.clusters.put(record.clusterId, record)
