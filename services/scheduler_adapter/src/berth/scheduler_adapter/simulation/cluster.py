"""An in-process cluster behind the ``ClusterBackend`` port, for development, tests and benchmarks.

It takes the same manifests a real cluster would, derives the pods they want, places them on a
configurable inventory (GPUs, fractions, node-pool order, gangs) and plays each workload's life
through timed transitions. One background task pops transitions off a heap as they fall due,
so its cost follows the number of changes, never the number of workloads.

Pods are created unscheduled and bound by scheduling passes on a fixed simulated period, as
KAI binds them in its next cycle, so Pending is a state of its own between Creating and
Initializing. A pass is one heap entry too, booked only while pods wait for it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import heapq
import itertools
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from berth.contracts.catalog import credential_of_secret
from berth.scheduler_adapter import labels
from berth.scheduler_adapter.backend import (
    Listing,
    PodStatus,
    WorkloadSnapshot,
    referenced_secrets,
)
from berth.scheduler_adapter.feed import SnapshotFeed
from berth.scheduler_adapter.simulation.capacity import Capacity
from berth.scheduler_adapter.simulation.inventory import Inventory
from berth.scheduler_adapter.simulation.manifests import WorkloadShape, shape_of
from berth.scheduler_adapter.simulation.placement import PlacementQueue
from berth.scheduler_adapter.simulation.state import (
    ObjectKey,
    SimPod,
    SimWorkload,
    WorkloadKey,
)
from berth.shared.errors import PermanentError

log = logging.getLogger(__name__)

# Simulated seconds. Short, but never zero, so each step stays a separate observable state.
CONTROLLER_DELAY = 0.1  # an object exists → its controller has created the pods
TERMINATION_GRACE = 1.0  # pods of a stopped workload take this long to go
PULL_BACKOFF_DELAY = 2.0  # ErrImagePull → ImagePullBackOff
RETRY_BASE, RETRY_CAP = 10.0, 360.0  # the Job controller's backoff between failed attempts
RESTART_BASE, RESTART_CAP = 10.0, 300.0  # the kubelet's CrashLoopBackOff
DERIVED_CONFIG_KEYS = frozenset({"nodePools", "gpus", "capabilities"})

# (due time, tie-breaker, workload, its epoch when queued, action, pods concerned); a
# scheduling pass concerns no workload and has None there.
Transition = tuple[float, int, SimWorkload | None, int, str, tuple[str, ...]]


class SimulatedCluster:
    name = "simulated"

    def __init__(
        self,
        inventory: Inventory,
        *,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        batch_size: int = 500,
        scheduling_interval: float = 1.0,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        if scheduling_interval <= 0:
            raise ValueError("scheduling_interval must be positive")
        self._config = inventory.config()
        self._capacity = Capacity(inventory)
        self._speed = speed
        self._clock = clock
        self._origin = clock()
        self._workloads: dict[WorkloadKey, SimWorkload] = {}
        self._timeline: list[Transition] = []
        self._sequence = itertools.count()
        self._cursor: float | None = None  # due time of the transition being played
        self._queue = PlacementQueue(self._capacity)
        self._interval = scheduling_interval  # simulated seconds between scheduling passes
        # Passes fall on multiples of the interval, as a scheduler's cycles tick regardless of
        # what arrives; this is the multiple of the latest one booked.
        self._pass_tick = 0
        self._pass_booked = False
        self._feed = SnapshotFeed(batch_size)
        # Secrets by (namespace, name): key -> value, as a pod would read them.
        self._secrets: dict[tuple[str, str], dict[str, str]] = {}
        # Pods that could not start for a missing Secret, by workload: started once it is given.
        self._blocked: dict[WorkloadKey, tuple[str, ...]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- the port -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="simulated-cluster")

    async def close(self) -> None:
        self._feed.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def apply(self, objects: list[dict[str, Any]], *, owned: bool = False) -> None:
        """Apply manifests; ``owned``: the caller never changes them afterwards (the API
        server's stored objects), so they are kept as they are rather than copied."""
        groups: dict[WorkloadKey, dict[ObjectKey, Mapping[str, Any]]] = {}
        for obj in objects:
            key, object_key = _keys(obj)
            groups.setdefault(key, {})[object_key] = obj if owned else copy.deepcopy(obj)
        # Read every shape before changing anything: a bad manifest leaves its workload as it
        # was, and never holds back the others applied with it (a resync applies them all).
        shapes: dict[WorkloadKey, WorkloadShape] = {}
        refused: dict[WorkloadKey, str] = {}
        for key, group in groups.items():
            try:
                shapes[key] = shape_of(list({**self._objects_of(key), **group}.values()))
            except ValueError as exc:
                refused[key] = str(exc)
        for key, group in groups.items():
            if key in shapes:
                self._apply(key, group, shapes[key])
        self._changed()
        for (namespace, workload_id), reason in refused.items():
            # Reported through the snapshot feed, as a real API server's refusal would be.
            self._feed.publish(
                WorkloadSnapshot(
                    workload_id, namespace, True, (("Failed", "ApplyError", reason),), (), 0
                )
            )
        if refused:
            raise PermanentError("; ".join(refused.values()))

    async def apply_secrets(self, secrets: list[dict[str, Any]]) -> None:
        for secret in secrets:
            metadata = secret["metadata"]
            data = secret.get("data") or {}
            self._secrets[(metadata["namespace"], metadata["name"])] = {
                key: base64.b64decode(value).decode() for key, value in data.items()
            }
        for key, names in list(self._blocked.items()):
            workload = self._workloads.get(key)
            if workload is None:
                del self._blocked[key]
            elif not self._missing_secrets(workload):
                del self._blocked[key]
                self._after(CONTROLLER_DELAY, workload, "started", names)
        self._changed()

    async def delete(self, namespace: str, workload_id: str) -> None:
        workload = self._workloads.get((namespace, workload_id))
        if workload is not None:
            self._remove(workload)
            self._changed()

    async def suspend(self, namespace: str, workload_id: str) -> None:
        workload = self._workloads.get((namespace, workload_id))
        if workload is None or workload.finished or workload.suspended:
            return
        workload.suspended = True
        self._new_course(workload)
        going = [pod for pod in workload.pods if pod.active and pod.scheduled]
        for pod in going:
            pod.reason, pod.message = "Terminating", ""
        for pod in workload.pods:
            if pod not in going:
                self._release(pod)
        workload.pods = going
        self._emit(workload)
        if going:
            self._after(TERMINATION_GRACE, workload, "terminated")
        self._changed()

    async def resume(self, namespace: str, workload_id: str) -> None:
        workload = self._workloads.get((namespace, workload_id))
        if workload is None or not workload.suspended:
            return
        workload.suspended = False
        self._new_course(workload)
        self._clear_pods(workload)
        self._emit(workload)
        self._after(CONTROLLER_DELAY, workload, "create_pods")
        self._changed()

    async def listed(self) -> Listing:
        # Every object it holds is at hand, of whatever kind.
        return Listing(
            kinds=None,
            objects=frozenset(key for w in self._workloads.values() for key in w.objects),
        )

    async def adopt(self, objects: list[dict[str, Any]]) -> None:
        pass

    def snapshots(self) -> AsyncIterator[list[WorkloadSnapshot]]:
        return self._feed.subscribe(self._resync)

    async def read_config(self) -> dict[str, Any]:
        return {
            **self._config,
            "nodePools": [pool.label for pool in self._capacity.pools],
            "gpus": self._capacity.gpus,
        }

    async def set_config(self, settings: dict[str, Any]) -> None:
        derived = sorted(DERIVED_CONFIG_KEYS & settings.keys())
        if derived:
            raise ValueError(f"{', '.join(derived)} follow from the inventory and cannot be set")
        self._config.update(settings)

    # --- introspection for tests and benchmarks ------------------------------------------------

    def now(self) -> float:
        """Simulated seconds since the cluster was created."""
        return (self._clock() - self._origin) * self._speed

    @property
    def workload_count(self) -> int:
        return len(self._workloads)

    def pods(self, namespace: str, workload_id: str) -> list[PodStatus]:
        workload = self._workloads.get((namespace, workload_id))
        return [pod.status() for pod in workload.pods] if workload is not None else []

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return self._speed

    def knows(self, namespace: str, workload_id: str) -> bool:
        return (namespace, workload_id) in self._workloads

    def suspended(self, namespace: str, workload_id: str) -> bool:
        workload = self._workloads.get((namespace, workload_id))
        return workload is not None and workload.suspended

    def image(self, namespace: str, workload_id: str) -> str:
        workload = self._workloads.get((namespace, workload_id))
        return workload.shape.image if workload is not None else ""

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's values as its pods would read them; None when it does not exist."""
        found = self._secrets.get((namespace, name))
        return dict(found) if found is not None else None

    # --- applying -----------------------------------------------------------------------------

    def _objects_of(self, key: WorkloadKey) -> dict[ObjectKey, Mapping[str, Any]]:
        workload = self._workloads.get(key)
        return workload.objects if workload is not None else {}

    def _apply(
        self, key: WorkloadKey, objects: dict[ObjectKey, Mapping[str, Any]], shape: WorkloadShape
    ) -> None:
        workload = self._workloads.get(key)
        if workload is None:
            workload = SimWorkload(key, objects, shape)
            self._workloads[key] = workload
            self._emit(workload)
            self._after(CONTROLLER_DELAY, workload, "create_pods")
            return
        merged = {**workload.objects, **objects}
        if merged == workload.objects:
            return
        workload.objects = merged
        if shape == workload.shape:
            return
        workload.shape = shape
        if workload.finished or workload.suspended:
            return
        # A changed pod template rolls the workload: new pods replace the old ones.
        self._new_course(workload)
        self._clear_pods(workload)
        self._emit(workload)
        self._after(CONTROLLER_DELAY, workload, "create_pods")

    # --- the timeline -------------------------------------------------------------------------

    def _after(
        self, delay: float, workload: SimWorkload, action: str, pods: tuple[str, ...] = ()
    ) -> None:
        # Chained transitions count from the due time of the one being played, not from the
        # wall clock, so durations stay exact however late the loop runs.
        start = self._cursor if self._cursor is not None else self.now()
        entry = (start + delay, next(self._sequence), workload, workload.epoch, action, pods)
        heapq.heappush(self._timeline, entry)

    def _book_pass(self) -> None:
        if self._pass_booked or not self._queue.due:
            return
        start = self._cursor if self._cursor is not None else self.now()
        # Strictly after both now and the last pass: a pod never shares the instant it starts
        # waiting with the pass that binds it, and float rounding cannot book a tick twice.
        self._pass_tick = max(math.floor(start / self._interval) + 1, self._pass_tick + 1)
        entry = (self._pass_tick * self._interval, next(self._sequence), None, 0, "schedule", ())
        heapq.heappush(self._timeline, entry)
        self._pass_booked = True

    def _changed(self) -> None:
        self._book_pass()
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            try:
                self._play_due()
            except Exception:
                log.exception("simulated cluster step failed")
            handle = None
            if self._timeline:
                delay = max(0.0, (self._timeline[0][0] - self.now()) / self._speed)
                handle = loop.call_later(delay, self._wake.set)
            await self._wake.wait()
            if handle is not None:
                handle.cancel()

    def _play_due(self) -> None:
        now = self.now()
        while self._timeline and self._timeline[0][0] <= now:
            due, _, workload, epoch, action, pods = heapq.heappop(self._timeline)
            if workload is not None and (
                self._workloads.get(workload.key) is not workload or workload.epoch != epoch
            ):
                continue  # queued for a course the workload has since left
            self._cursor = due
            try:
                if workload is None:
                    self._scheduling_pass(due)
                else:
                    self._play(workload, action, pods)
            except Exception:
                concerned = workload.key if workload is not None else "-"
                log.exception("transition %s of workload %s failed", action, concerned)
            finally:
                # Booked while the cursor still says when the change happened, so a late loop
                # does not push the pass later in simulated time.
                self._book_pass()
                self._cursor = None

    def _play(self, workload: SimWorkload, action: str, names: tuple[str, ...]) -> None:
        pods = [pod for pod in workload.pods if pod.name in names]
        if action == "create_pods":
            self._create_pods(workload)
        elif action == "started":
            self._started(workload, pods)
        elif action == "exited":
            self._exited(workload, pods)
        elif action == "restarted":
            self._set(workload, pods, phase="Running", ready=True, reason="", message="")
            self._after(workload.shape.runtime or 0.0, workload, "exited", names)
        elif action == "pull_failed":
            message = f'failed to pull image "{workload.shape.image}": simulated pull failure'
            self._set(workload, pods, reason="ErrImagePull", message=message)
            self._after(PULL_BACKOFF_DELAY, workload, "pull_backoff", names)
        elif action == "pull_backoff":
            message = f'Back-off pulling image "{workload.shape.image}"'
            self._set(workload, pods, reason="ImagePullBackOff", message=message)
        elif action == "terminated":
            self._clear_pods(workload)
            self._emit(workload)
        elif action == "expire":
            self._remove(workload)
        else:
            raise ValueError(f"unknown transition {action}")

    # --- transitions --------------------------------------------------------------------------

    def _create_pods(self, workload: SimWorkload) -> None:
        # Unscheduled, with no reason yet: the scheduler has not looked at them.
        workload.pods = [SimPod(name, demand) for name, demand in workload.shape.pods]
        if workload.pods:
            since = self._cursor if self._cursor is not None else self.now()
            self._queue.add(workload.key, workload.shape.priority, since)
        self._emit(workload)

    def _started(self, workload: SimWorkload, pods: list[SimPod]) -> None:
        missing = self._missing_secrets(workload)
        if missing:
            # The kubelet's answer to a container whose env or volume names a missing Secret;
            # it starts the container once the Secret exists.
            message = f'secret "{missing[0]}" not found'
            self._set(workload, pods, reason="CreateContainerConfigError", message=message)
            self._blocked[workload.key] = tuple(pod.name for pod in pods)
            return
        self._set(workload, pods, phase="Running", ready=True, reason="", message="")
        shape = workload.shape
        if shape.finite or shape.fail == "crash":
            names = tuple(pod.name for pod in pods)
            self._after(shape.runtime or 0.0, workload, "exited", names)

    def _exited(self, workload: SimWorkload, pods: list[SimPod]) -> None:
        shape = workload.shape
        if shape.fail != "crash":
            for pod in pods:
                self._release(pod)
            self._set(
                workload, pods, phase="Succeeded", ready=False, reason="Completed", emit=False
            )
            if sum(1 for pod in workload.pods if pod.phase == "Succeeded") >= len(shape.pods):
                self._finish(workload, (shape.success_condition, "", ""))
            else:
                self._emit(workload)
            return
        workload.failures += 1
        if not shape.finite:
            message = "back-off restarting failed container"
            self._set(workload, pods, ready=False, reason="CrashLoopBackOff", message=message)
            delay = min(RESTART_BASE * 2 ** (workload.failures - 1), RESTART_CAP)
            self._after(delay, workload, "restarted", tuple(pod.name for pod in pods))
            return
        # One crashed pod fails the attempt: the whole workload is retried, as a gang would be.
        self._new_course(workload)
        for pod in workload.pods:
            self._release(pod)
            if pod.active:
                pod.phase, pod.ready = "Failed", False
                pod.reason, pod.message = "Error", "container exited with code 1"
        if workload.failures > shape.backoff_limit:
            message = "Job has reached the specified backoff limit"
            self._finish(workload, ("Failed", "BackoffLimitExceeded", message))
            return
        self._emit(workload)
        delay = min(RETRY_BASE * 2 ** (workload.failures - 1), RETRY_CAP)
        self._after(delay, workload, "create_pods")

    def _finish(self, workload: SimWorkload, condition: tuple[str, str, str]) -> None:
        workload.conditions.append(condition)
        workload.finished = True
        self._emit(workload)
        if workload.shape.ttl_seconds is not None:
            self._after(workload.shape.ttl_seconds, workload, "expire")

    def _scheduling_pass(self, due: float) -> None:
        self._pass_booked = False
        for workload, placed in self._queue.place(self._workloads, due):
            self._emit(workload)
            if placed:
                action = "pull_failed" if workload.shape.fail == "image-pull" else "started"
                names = tuple(pod.name for pod in placed)
                self._after(workload.shape.startup, workload, action, names)

    # --- helpers ------------------------------------------------------------------------------

    def _set(
        self, workload: SimWorkload, pods: list[SimPod], *, emit: bool = True, **fields: Any
    ) -> None:
        for pod in pods:
            for name, value in fields.items():
                setattr(pod, name, value)
        if emit:
            self._emit(workload)

    def _new_course(self, workload: SimWorkload) -> None:
        workload.epoch += 1
        self._queue.discard(workload.key)

    def _release(self, pod: SimPod) -> None:
        self._queue.release(pod)

    def _clear_pods(self, workload: SimWorkload) -> None:
        for pod in workload.pods:
            self._release(pod)
        workload.pods = []

    def _remove(self, workload: SimWorkload) -> None:
        self._clear_pods(workload)
        self._new_course(workload)
        del self._workloads[workload.key]
        if self._feed.listened:
            self._feed.publish(workload.snapshot(exists=False))

    def _emit(self, workload: SimWorkload) -> None:
        # Every transition gets its own snapshot, so no intermediate phase is ever skipped.
        if self._feed.listened:
            self._feed.publish(workload.snapshot())

    def _missing_secrets(self, workload: SimWorkload) -> list[str]:
        # Only credentials' Secrets: the simulation knows no other Secret to check against.
        namespace = workload.key[0]
        return sorted(
            name
            for name in referenced_secrets(workload.objects.values())
            if credential_of_secret(name) and (namespace, name) not in self._secrets
        )

    def _resync(self) -> list[WorkloadSnapshot]:
        return [workload.snapshot() for workload in self._workloads.values()]


def _keys(obj: Mapping[str, Any]) -> tuple[WorkloadKey, ObjectKey]:
    metadata = obj.get("metadata") or {}
    namespace, name = metadata.get("namespace"), metadata.get("name")
    workload_id = (metadata.get("labels") or {}).get(labels.WORKLOAD_ID_LABEL)
    if not (namespace and name and workload_id and obj.get("apiVersion") and obj.get("kind")):
        raise ValueError(
            f"every object needs apiVersion, kind, metadata.name, metadata.namespace and the "
            f"{labels.WORKLOAD_ID_LABEL} label; got {obj.get('kind')} {name!r}"
        )
    object_key = (str(obj["apiVersion"]), str(obj["kind"]), str(namespace), str(name))
    return (str(namespace), str(workload_id)), object_key
