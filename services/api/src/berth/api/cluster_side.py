"""A workload on its cluster: its pods, their container logs and the Kubernetes objects it is
rendered into, asked of the cluster's agent (the queries ``berth describe``, ``berth logs``
and a dry run send), and why it waits, in words."""

from __future__ import annotations

from typing import Any

from berth.api.auth import Caller
from berth.api.bus import Bus, Refused, Unavailable
from berth.contracts.events import WorkloadRef
from berth.contracts.queries import (
    LogsQuery,
    LogsReply,
    PodInfo,
    PodsQuery,
    PodsReply,
    ProjectInfo,
    RenderReply,
    RenderRequest,
    WorkloadView,
)
from berth.contracts.subjects import rpc_logs, rpc_pods, rpc_render
from berth.contracts.workload import SUBMISSION_CLASSES

# A cluster that does not answer this fast is reported as such: a page does not wait on it.
CLUSTER_TIMEOUT = 5.0
# Statuses of a workload no cluster holds (yet, or any more).
OFF_CLUSTER = ("received", "approved", "rejected", "Deleted")

# The scheduler's and the kubelet's reasons a pod waits or fails, in words.
POD_REASONS: dict[str, str] = {
    "Unschedulable": "no node has room for it now",
    "ContainerCreating": "its containers are being created",
    "PodInitializing": "its init containers are running",
    "ErrImagePull": "its image cannot be pulled",
    "ImagePullBackOff": "its image cannot be pulled (retrying)",
    "InvalidImageName": "its image name is not valid",
    "ErrImageNeverPull": "its image is not on the node and may not be pulled",
    "CrashLoopBackOff": "its container keeps exiting and is restarted after a pause",
    "CreateContainerConfigError": "a secret or config map it needs is missing",
    "CreateContainerError": "its container could not be created",
    "BackOff": "it is retried after a failed attempt",
}


def on_cluster(view: WorkloadView) -> bool:
    return bool(view.clusterId) and view.status not in OFF_CLUSTER


async def pods(bus: Bus, caller: Caller, view: WorkloadView) -> tuple[list[PodInfo], str]:
    """The workload's pods as its cluster reports them now, or why they cannot be shown."""
    if not on_cluster(view):
        return [], ""
    assert view.clusterId is not None
    try:
        reply = await bus.ask(
            rpc_pods(view.clusterId),
            PodsQuery(workloadId=view.workloadId),
            PodsReply,
            caller.authorization,
            timeout=CLUSTER_TIMEOUT,
        )
    except (Unavailable, Refused) as exc:
        return [], f"cluster {view.clusterId} did not answer: {exc}"
    return list(reply.pods), reply.error or ""


async def logs(
    bus: Bus, caller: Caller, view: WorkloadView, pod: str | None, tail: int
) -> LogsReply:
    """The last ``tail`` lines of one pod's container log (the first pod's by default)."""
    if not on_cluster(view):
        return LogsReply(error=f"the workload is not on a cluster (status {view.status})")
    assert view.clusterId is not None
    try:
        return await bus.ask(
            rpc_logs(view.clusterId),
            LogsQuery(workloadId=view.workloadId, pod=pod, tail=tail),
            LogsReply,
            caller.authorization,
            timeout=CLUSTER_TIMEOUT,
        )
    except (Unavailable, Refused) as exc:
        return LogsReply(error=f"cluster {view.clusterId} did not answer: {exc}")


async def rendered(
    bus: Bus, caller: Caller, view: WorkloadView, project: ProjectInfo | None
) -> tuple[list[dict[str, Any]], str]:
    """The objects the workload's cluster renders its approved spec into (the dry run's render:
    nothing is applied), or why they cannot be shown."""
    cluster = view.clusterId or (project.clusterId if project else None)
    if view.status == "rejected" or not view.spec or project is None or not cluster:
        return [], ""
    cls = next((c for c in SUBMISSION_CLASSES if c.model_fields["kind"].default == view.kind), None)
    if cls is None:
        return [], f"no workload kind {view.kind}"
    ref = WorkloadRef(
        workloadId=view.workloadId,
        name=view.name,
        kind=view.kind,  # type: ignore[arg-type]
        project=view.project,
        department=project.department,
        clusterId=cluster,
        namespace=project.namespace,
        queue=project.queue,
        createdBy=view.createdBy,
    )
    try:
        submission = cls.model_validate(view.spec)
        reply = await bus.ask(
            rpc_render(cluster),
            RenderRequest(workload=ref, submission=submission),  # type: ignore[arg-type]
            RenderReply,
            caller.authorization,
            timeout=CLUSTER_TIMEOUT,
        )
    except ValueError as exc:
        return [], f"the stored spec does not read as a {view.kind}: {exc}"
    except (Unavailable, Refused) as exc:
        return [], f"cluster {cluster} did not answer: {exc}"
    return list(reply.manifests), reply.error or ""


def why_waiting(view: WorkloadView, found: list[PodInfo]) -> str | None:
    """Why a workload that is not running yet waits, in words; None when it does not wait."""
    if view.phase not in ("Pending", "Creating", "Initializing"):
        return None
    message = view.phaseMessage.strip()
    if message.startswith("over quota"):
        return f"It waits for its project's GPU quota: {message.removeprefix('over quota: ')}."
    waiting = next((p for p in found if p.phase == "Pending" or not p.ready), None)
    if waiting is not None and waiting.reason:
        words = POD_REASONS.get(waiting.reason, waiting.reason)
        detail = f": {waiting.message}" if waiting.message else ""
        return f"Pod {waiting.name} waits because {words}{detail}."
    if view.phase == "Pending":
        return f"It waits to be scheduled: {message}." if message else "It waits to be scheduled."
    return f"{message}." if message else None
