"""The ownership store in memory, for handler tests: same port as the PostgreSQL store; and
intake's answer about the workloads an action names, from a dictionary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from berth.contracts.events import WorkloadRef
from berth.contracts.queries import ActionTarget, ActionTargetsReply
from berth.ownership.store import Protection, Said
from berth.shared.errors import TransientError
from berth.shared.testing import InMemoryTable


class InMemoryOwnershipStore:
    def __init__(self) -> None:
        self.clusters: InMemoryTable[str, Protection] = InMemoryTable()

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

    def snapshot(self) -> Any:
        return self.clusters.snapshot()

    def restore(self, snapshot: Any) -> None:
        self.clusters.restore(snapshot)


class FakeIntake:
    """Intake's read model as ownership asks it (``berth.ownership.workloads.ActionTargets``):
    received workloads with their current phase; a name stands for its live workload, else the
    latest received. ``down`` makes it unreachable, as a timeout does."""

    def __init__(self) -> None:
        self.targets: dict[str, ActionTarget] = {}
        self.ended: set[str] = set()
        self.down = False
        self.questions: list[tuple[list[str], list[tuple[str, str]]]] = []

    def received(self, workload: WorkloadRef) -> None:
        self.targets[workload.workloadId] = ActionTarget(workload=workload)

    def phase(self, workload: WorkloadRef, phase: str) -> None:
        target = self.targets[workload.workloadId]
        self.targets[workload.workloadId] = target.model_copy(update={"phase": phase})

    def deleted(self, workload: WorkloadRef) -> None:
        self.phase(workload, "Deleted")
        self.ended.add(workload.workloadId)

    async def __call__(
        self, workload_ids: Sequence[str], names: Sequence[tuple[str, str]]
    ) -> ActionTargetsReply:
        self.questions.append((list(workload_ids), list(names)))
        if self.down:
            raise TransientError("no answer on rpc.intake.workloads.action-targets.v1 within 5s")
        by_name: dict[tuple[str, str], ActionTarget] = {}
        latest = list(self.targets.values())[::-1]
        ended = [t for t in latest if t.workload.workloadId in self.ended]
        # Live ones first, then the rest; the latest first in each.
        for t in [t for t in latest if t not in ended] + ended:
            key = (t.workload.project, t.workload.name)
            if key in names:
                by_name.setdefault(key, t)
        return ActionTargetsReply(
            byId={i: self.targets[i] for i in workload_ids if i in self.targets},
            byName=list(by_name.values()),
        )
