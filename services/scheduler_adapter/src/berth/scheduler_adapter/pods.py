"""A workload's pods and their container logs, read from the cluster's API for the CLI (through
the agent: the CLI speaks only NATS)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from berth.contracts.queries import (
    LogsQuery,
    LogsReply,
    NodeInfo,
    NodesQuery,
    NodesReply,
    PodInfo,
    PodsQuery,
    PodsReply,
)
from berth.scheduler_adapter import labels
from berth.scheduler_adapter.kubernetes import pod_status
from berth.shared.errors import PermanentError, TransientError


@runtime_checkable
class PodReader(Protocol):
    def workload_pods(self, workload_id: str) -> list[dict[str, Any]]: ...

    async def node_pools(self) -> dict[str, str]: ...

    def active_pods(self) -> list[dict[str, Any]]: ...

    async def nodes(self) -> list[dict[str, Any]]: ...

    async def pod_log(self, namespace: str, pod: str, container: str | None = None) -> str: ...


def gpus_of(pod: Mapping[str, Any]) -> str:
    """What the pod asked of GPUs: whole devices, a KAI fraction, or GPU memory."""
    whole = 0
    for container in (pod.get("spec") or {}).get("containers") or ():
        limits = (container.get("resources") or {}).get("limits") or {}
        whole += int(str(limits.get(labels.GPU_RESOURCE, "0")) or 0)
    if whole:
        return str(whole)
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if labels.GPU_FRACTION_ANNOTATION in annotations:
        devices = annotations.get(labels.GPU_FRACTION_DEVICES_ANNOTATION)
        fraction = str(annotations[labels.GPU_FRACTION_ANNOTATION])
        return f"{devices}x{fraction}" if devices else fraction
    if labels.GPU_MEMORY_ANNOTATION in annotations:
        return f"{annotations[labels.GPU_MEMORY_ANNOTATION]}MiB"
    return ""


def gpus_held(pod: Mapping[str, Any]) -> float:
    """GPUs a pod holds, a fraction counting as that part of each device."""
    text = gpus_of(pod)
    if not text or text.endswith("MiB"):
        return 0.0
    devices, _, fraction = text.rpartition("x")
    return float(fraction) * (int(devices) if devices else 1)


async def nodes_query(_query: NodesQuery, *, reader: PodReader) -> NodesReply:
    try:
        nodes = await reader.nodes()
    except (TransientError, PermanentError) as exc:
        return NodesReply(error=str(exc))
    used: dict[str, float] = {}
    for pod in reader.active_pods():
        held = str(pod["spec"]["nodeName"])
        used[held] = used.get(held, 0.0) + gpus_held(pod)
    found = []
    for node in nodes:
        meta = node.get("metadata") or {}
        status = node.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or ()
        )
        allocatable = (status.get("allocatable") or {}).get(labels.GPU_RESOURCE, "0")
        name = str(meta.get("name", ""))
        found.append(
            NodeInfo(
                name=name,
                nodePool=str((meta.get("labels") or {}).get(labels.NODE_POOL_LABEL) or "default"),
                ready=ready,
                gpus=int(str(allocatable) or 0),
                gpusUsed=round(used.get(name, 0.0), 3),
            )
        )
    return NodesReply(nodes=sorted(found, key=lambda n: (n.nodePool, n.name)))


def pod_info(pod: Mapping[str, Any], pools: Mapping[str, str]) -> PodInfo:
    status = pod_status(pod)
    restarts = sum(
        int(c.get("restartCount") or 0)
        for c in (pod.get("status") or {}).get("containerStatuses") or ()
    )
    return PodInfo(
        name=status.name,
        phase=status.phase,
        node=status.node,
        nodePool=pools.get(status.node) if status.node else None,
        gpus=gpus_of(pod),
        ready=status.ready,
        reason=status.reason,
        message=status.message,
        restarts=restarts,
    )


async def pods_query(query: PodsQuery, *, reader: PodReader) -> PodsReply:
    pods = sorted(reader.workload_pods(query.workloadId), key=lambda p: p["metadata"]["name"])
    try:
        pools = (
            await reader.node_pools()
            if any(p.get("spec", {}).get("nodeName") for p in pods)
            else {}
        )
    except (TransientError, PermanentError):
        pools = {}
    return PodsReply(pods=[pod_info(p, pools) for p in pods])


def _finished(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


async def logs_query(query: LogsQuery, *, reader: PodReader) -> LogsReply:
    pods: Sequence[Mapping[str, Any]] = sorted(
        reader.workload_pods(query.workloadId), key=lambda p: p["metadata"]["name"]
    )
    names = [str(p["metadata"]["name"]) for p in pods]
    if not pods:
        return LogsReply(finished=True, error="the workload has no pods on its cluster")
    chosen = next((p for p in pods if p["metadata"]["name"] == query.pod), None)
    if query.pod and chosen is None:
        listed = ", ".join(names)
        return LogsReply(pods=names, error=f'no pod "{query.pod}" (pods: {listed})')
    pod = chosen or pods[0]
    name = str(pod["metadata"]["name"])
    finished = _finished(pod)
    try:
        text = await reader.pod_log(str(pod["metadata"]["namespace"]), name, query.container)
    except PermanentError as exc:
        # Not started yet (waiting for the scheduler, pulling its image): nothing to read yet.
        return LogsReply(
            pod=name, pods=names, offset=query.offset, finished=finished, error=str(exc)
        )
    lines = text.splitlines()
    start = query.offset
    if query.offset == 0 and query.tail is not None:
        start = max(0, len(lines) - query.tail)
    return LogsReply(
        pod=name, pods=names, lines=lines[start:], offset=len(lines), finished=finished
    )
