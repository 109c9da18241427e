"""The ownership store in memory, for handler tests: same port as the PostgreSQL store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from berth.contracts.events import TERMINAL_PHASES
from berth.ownership.store import Owner, Phase, Protection, Said
from berth.shared.testing import InMemoryTable


class InMemoryOwnershipStore:
    def __init__(self) -> None:
        self.owner_rows: InMemoryTable[str, Owner] = InMemoryTable()
        self.clusters: InMemoryTable[str, Protection] = InMemoryTable()
        self.phase_rows: InMemoryTable[str, Phase] = InMemoryTable()

    async def add_owners(self, records: Sequence[Owner]) -> None:
        for record in records:
            self.owner_rows.insert_new(record.workload_id, record)

    async def owners(self, workload_ids: Iterable[str]) -> dict[str, Owner]:
        return {i: o for i in set(workload_ids) if (o := self.owner_rows.get(i)) is not None}

    async def owners_named(self, names: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Owner]:
        wanted = set(names)
        return {
            key: o
            for o in self.owner_rows
            if (key := (o.ref.get("project"), o.ref.get("name"))) in wanted
        }

    async def record_reported(self, reports: Sequence[Said]) -> None:
        for said in reports:
            old = self.clusters.get(said.cluster_id) or Protection(said.cluster_id)
            if old.reported_at is None or old.reported_at <= said.at:
                self.clusters.put(
                    said.cluster_id, replace(old, reported=said.protection, reported_at=said.at)
                )

    async def record_desired(self, requests: Sequence[Said]) -> None:
        for said in requests:
            old = self.clusters.get(said.cluster_id) or Protection(said.cluster_id)
            if old.desired_at is None or old.desired_at <= said.at:
                self.clusters.put(
                    said.cluster_id, replace(old, desired=said.protection, desired_at=said.at)
                )

    async def protections(self) -> dict[str, Protection]:
        return {p.cluster_id: p for p in self.clusters}

    async def record_phases(self, phases: Sequence[Phase]) -> None:
        for phase in phases:
            old = self.phase_rows.get(phase.workload_id)
            if old is None or (old.at <= phase.at and old.phase not in TERMINAL_PHASES):
                self.phase_rows.put(phase.workload_id, phase)

    async def phases(self, workload_ids: Iterable[str]) -> dict[str, str]:
        return {i: p.phase for i in set(workload_ids) if (p := self.phase_rows.get(i)) is not None}

    def snapshot(self) -> Any:
        return (self.owner_rows.snapshot(), self.clusters.snapshot(), self.phase_rows.snapshot())

    def restore(self, snapshot: Any) -> None:
        owners, clusters, phases = snapshot
        self.owner_rows.restore(owners)
        self.clusters.restore(clusters)
        self.phase_rows.restore(phases)
