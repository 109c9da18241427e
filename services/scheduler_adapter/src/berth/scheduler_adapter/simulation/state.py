"""Mutable per-workload state of the simulated cluster, and its snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from berth.scheduler_adapter.backend import PodStatus, WorkloadSnapshot
from berth.scheduler_adapter.simulation.capacity import Allocation, PodDemand
from berth.scheduler_adapter.simulation.manifests import WorkloadShape

ObjectKey = tuple[str, str, str, str]  # apiVersion, kind, namespace, name
WorkloadKey = tuple[str, str]  # namespace, workload id


@dataclass
class SimPod:
    name: str
    demand: PodDemand
    phase: str = "Pending"
    scheduled: bool = False
    ready: bool = False
    reason: str = ""
    message: str = ""
    node: str | None = None
    allocation: Allocation | None = None  # held capacity; None once the pod has finished

    @property
    def active(self) -> bool:
        return self.phase in ("Pending", "Running")

    def status(self) -> PodStatus:
        return PodStatus(
            self.name, self.phase, self.scheduled, self.ready, self.reason, self.message, self.node
        )


@dataclass
class SimWorkload:
    key: WorkloadKey
    objects: dict[ObjectKey, Mapping[str, Any]]
    shape: WorkloadShape
    pods: list[SimPod] = field(default_factory=list)
    conditions: list[tuple[str, str, str]] = field(default_factory=list)
    suspended: bool = False
    finished: bool = False
    failures: int = 0  # failed attempts so far (Job backoff) or container restarts
    # Bumped whenever the workload's course changes (suspend, resume, restart, update), so
    # timed transitions queued for the old course are recognised as stale and dropped.
    epoch: int = 0

    def snapshot(self, *, exists: bool = True) -> WorkloadSnapshot:
        return WorkloadSnapshot(
            workload_id=self.key[1],
            namespace=self.key[0],
            exists=exists,
            conditions=tuple(self.conditions),
            pods=tuple(pod.status() for pod in self.pods) if exists else (),
            expected_pods=len(self.shape.pods),
            suspended=self.suspended,
            note=self.shape.note,
        )

    def waiting_pods(self) -> list[SimPod]:
        return [pod for pod in self.pods if pod.phase == "Pending" and not pod.scheduled]
