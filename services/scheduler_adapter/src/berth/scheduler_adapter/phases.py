"""Map a Kubernetes-shaped workload snapshot onto a Run:ai phase (pure)."""

from __future__ import annotations

from berth.contracts.events import Phase
from berth.scheduler_adapter.backend import PodStatus, WorkloadSnapshot

COMPLETE_CONDITIONS = frozenset({"Complete", "Succeeded"})
FAILED_CONDITIONS = frozenset({"Failed"})
ACTIVE_POD_PHASES = frozenset({"Pending", "Running"})
# Waiting reasons a pod does not get out of by itself. ErrImagePull is left out on purpose:
# a first pull failure is often a registry hiccup, and the kubelet reports ImagePullBackOff
# once it has really given up.
FATAL_POD_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)

DerivedPhase = tuple[Phase, str, str, int, int]


def derive_phase(s: WorkloadSnapshot) -> DerivedPhase:
    """(phase, message, reason, running_pods, requested_pods) for a snapshot."""
    phase, message, reason, running, requested = _derive(s)
    if not message and s.note and phase != "Deleted":
        message = s.note
    return phase, message, reason, running, requested


def _derive(s: WorkloadSnapshot) -> DerivedPhase:
    requested = s.expected_pods
    active = [pod for pod in s.pods if pod.phase in ACTIVE_POD_PHASES]
    running = sum(1 for pod in active if pod.phase == "Running")
    if not s.exists:
        return "Deleted", "", "", 0, requested
    if s.deleting:
        return "Deleting", "", "", running, requested
    for kind, reason, message in s.conditions:
        if kind in FAILED_CONDITIONS:
            return "Failed", message, reason, running, requested
    for kind, reason, message in s.conditions:
        if kind in COMPLETE_CONDITIONS:
            return "Completed", message, reason, running, requested
    if s.suspended:
        if active:
            return "Stopping", f"{len(active)} pod(s) terminating", "", running, requested
        return "Stopped", "", "", 0, requested
    if not active:
        if requested == 0:
            return "Running", "scaled to zero", "", 0, 0
        if any(pod.phase == "Succeeded" for pod in s.pods) and not any(
            pod.phase == "Failed" for pod in s.pods
        ):
            # Every pod finished well and the controller has not marked the job complete yet:
            # still running as far as anyone can tell, rather than back to Creating.
            return "Running", "", "", 0, requested
        if any(pod.phase == "Failed" for pod in s.pods):
            # Between attempts of a retried job: its controller is waiting out the back-off.
            return "Creating", "retrying after a failed attempt", "BackOff", 0, requested
        return "Creating", "", "", 0, requested
    return _active_phase(s, active, running, requested)


def _active_phase(
    s: WorkloadSnapshot, active: list[PodStatus], running: int, requested: int
) -> DerivedPhase:
    unscheduled = [pod for pod in active if not pod.scheduled]
    if unscheduled:
        pod = unscheduled[0]
        return "Pending", pod.message, pod.reason, running, requested
    ready = [pod for pod in active if pod.ready]
    broken = [pod for pod in active if not pod.ready and pod.reason in FATAL_POD_REASONS]
    if broken:
        pod = broken[0]
        # With some replicas still serving the workload is hurt, not lost.
        phase: Phase = "Degraded" if ready else "Failed"
        return phase, pod.message, pod.reason, running, requested
    succeeded = sum(1 for pod in s.pods if pod.phase == "Succeeded")
    if len(ready) == len(active) and len(active) + succeeded >= requested:
        return "Running", "", "", running, requested
    # A pod that had started (phase Running) but is no longer ready next to ready ones means
    # the workload was up and lost part of itself, unlike pods still coming up.
    if ready and any(pod.phase == "Running" and not pod.ready for pod in active):
        pod = next(pod for pod in active if not pod.ready)
        return "Degraded", pod.message, pod.reason, running, requested
    waiting = next((pod for pod in active if not pod.ready), active[0])
    return "Initializing", waiting.message, waiting.reason, running, requested
