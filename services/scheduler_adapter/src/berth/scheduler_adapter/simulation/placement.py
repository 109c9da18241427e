"""The simulated scheduler's queue: workloads whose pods wait for a node, tried oldest first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from berth.scheduler_adapter.simulation.capacity import Capacity
from berth.scheduler_adapter.simulation.state import SimPod, SimWorkload, WorkloadKey

# A workload whose state a pass changed, and the pods of it the pass placed (maybe none).
Placement = tuple[SimWorkload, list[SimPod]]


class PlacementQueue:
    def __init__(self, capacity: Capacity) -> None:
        self.capacity = capacity
        self._waiting: dict[WorkloadKey, None] = {}  # insertion order = arrival order
        self._fresh: dict[WorkloadKey, None] = {}  # arrived since the last pass
        self._freed = False

    def add(self, key: WorkloadKey) -> None:
        self._waiting[key] = None
        self._fresh[key] = None

    def discard(self, key: WorkloadKey) -> None:
        self._waiting.pop(key, None)

    def release(self, pod: SimPod) -> None:
        if pod.allocation is not None:
            self.capacity.release(pod.allocation)
            pod.allocation = None
            self._freed = True

    def place(self, workloads: Mapping[WorkloadKey, SimWorkload]) -> list[Placement]:
        """One scheduling pass; returns the workloads it changed."""
        if not self._fresh and not self._freed:
            return []
        # Capacity only shrinks between passes unless something was freed, so a workload that
        # did not fit last time cannot fit now and only newcomers need a try.
        keys = list(self._waiting if self._freed else self._fresh)
        self._freed = False
        self._fresh.clear()
        # Within a pass capacity only shrinks too, so a demand that failed once fails again:
        # identical waiting workloads (the common case under load) cost one attempt per pass.
        misfits: dict[tuple[Any, ...], str] = {}
        changes: list[Placement] = []
        for key in keys:
            workload = workloads.get(key)
            pods = workload.waiting_pods() if workload is not None else []
            if workload is None or not pods:
                self._waiting.pop(key, None)
                continue
            placed, changed = self._place(workload, pods, misfits)
            if changed:
                changes.append((workload, placed))
        return changes

    def _place(
        self, workload: SimWorkload, pods: list[SimPod], misfits: dict[tuple[Any, ...], str]
    ) -> tuple[list[SimPod], bool]:
        demands = tuple(pod.demand for pod in pods)
        signature = (demands, workload.shape.gang)
        reason = misfits.get(signature)
        if reason is None:
            allocations, reason = self.capacity.place(demands, gang=workload.shape.gang)
        else:
            allocations = [None] * len(pods)
        placed: list[SimPod] = []
        changed = False
        for pod, allocation in zip(pods, allocations, strict=True):
            if allocation is not None:
                pod.allocation, pod.scheduled, pod.node = allocation, True, allocation.node.name
                pod.reason, pod.message = "ContainerCreating", ""
                placed.append(pod)
            else:
                # The reason is refreshed quietly: a waiting pod's numbers move with every pass,
                # and re-announcing them would flood subscribers without any change of state.
                changed = changed or pod.reason != "Unschedulable"
                pod.reason, pod.message = "Unschedulable", reason
        if not placed:
            misfits[signature] = reason
        elif len(placed) == len(pods):
            self._waiting.pop(workload.key, None)
        return placed, changed or bool(placed)
