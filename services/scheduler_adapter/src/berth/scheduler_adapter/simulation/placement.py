"""The simulated scheduler's queue: workloads whose pods wait for a node, and its passes.

Like KAI, the scheduler works in passes: pods are created unscheduled and only a pass binds
them. Each pass retries every waiting workload, highest priority first, oldest first within a
priority.
"""

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
        # key → (priority, simulated time it started waiting); insertion order = arrival order
        self._waiting: dict[WorkloadKey, tuple[int, float]] = {}
        self._changed = False  # since the last pass

    @property
    def due(self) -> bool:
        """Whether a pass could place anything.

        Capacity only shrinks between passes unless something is released, so without a release
        or a newcomer a pass would place nothing: the cluster books one only when this says so,
        and nothing spins while pods wait in vain.
        """
        return self._changed and bool(self._waiting)

    def add(self, key: WorkloadKey, priority: int, since: float) -> None:
        self._waiting.pop(key, None)
        self._waiting[key] = (priority, since)
        self._changed = True

    def discard(self, key: WorkloadKey) -> None:
        self._waiting.pop(key, None)

    def release(self, pod: SimPod) -> None:
        if pod.allocation is not None:
            self.capacity.release(pod.allocation)
            pod.allocation = None
            self._changed = True

    def place(self, workloads: Mapping[WorkloadKey, SimWorkload], now: float) -> list[Placement]:
        """One scheduling pass at simulated time ``now``; returns the workloads it changed."""
        self._changed = False
        # sorted() is stable, so arrival order holds within a priority.
        queue = sorted(self._waiting.items(), key=lambda item: -item[1][0])
        # Within a pass capacity only shrinks, so a demand that failed once fails again:
        # identical waiting workloads (the common case under load) cost one attempt per pass.
        misfits: dict[tuple[Any, ...], str] = {}
        changes: list[Placement] = []
        for key, (_, since) in queue:
            if since >= now:
                # Created in the very instant of this pass: a real scheduler's cycle would have
                # taken its snapshot already, so the pod waits for the next one.
                self._changed = True
                continue
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
        # Pods of the gang already bound count toward its minimum: the rest may go one by one.
        bound = sum(1 for pod in workload.pods if pod.scheduled and pod.active)
        gang = max(1, workload.shape.gang - bound)
        signature = (demands, gang)
        reason = misfits.get(signature)
        if reason is None:
            allocations, reason = self.capacity.place(demands, gang=gang)
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
