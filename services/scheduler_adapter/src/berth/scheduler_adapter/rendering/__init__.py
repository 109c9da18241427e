"""Render a workload submission into the Kubernetes objects a cluster should hold (pure).

One renderer per submission kind, registered on ``render_kind``; the modules of this package
build the parts (pods, placement, storage, tools...)."""

from __future__ import annotations

from functools import singledispatch
from typing import Any

from berth.contracts.events import ObjectRef, WorkloadRef
from berth.contracts.workload import (
    DistributedSubmission,
    InferenceSubmission,
    TrainingSubmission,
    WorkloadSubmission,
    WorkspaceSubmission,
)
from berth.scheduler_adapter.rendering.capabilities import ClusterCapabilities, from_config
from berth.scheduler_adapter.rendering.distributed import render_distributed
from berth.scheduler_adapter.rendering.inference import render_inference
from berth.scheduler_adapter.rendering.training import render_training
from berth.scheduler_adapter.rendering.workspace import render_workspace

__all__ = [
    "ClusterCapabilities",
    "from_config",
    "object_refs",
    "render",
    "render_kind",
    "scheduling_ref",
]

_NO_CAPABILITIES = ClusterCapabilities()


def scheduling_ref(
    workload: WorkloadRef, submission: WorkloadSubmission, caps: ClusterCapabilities
) -> WorkloadRef:
    """``workload`` with the queue KAI schedules it in: with queues per node pool (the shard
    convention), the project queue's one for the workload's pool."""
    pools = submission.spec.nodePools
    if not caps.kai.queuePerNodePool or not pools:
        return workload
    return workload.model_copy(update={"queue": f"{workload.queue}-{pools[0]}"})


def render(
    workload: WorkloadRef,
    submission: WorkloadSubmission,
    *,
    trace_id: str | None,
    capabilities: ClusterCapabilities = _NO_CAPABILITIES,
) -> list[dict[str, Any]]:
    """Kubernetes objects for ``submission``, as plain dicts.

    One of them is the top object (``backend.is_top``): the workload's status is read from it
    and the others are owned by it, except persistent claims, which outlive the workload. The
    owner references carry no uid yet; a backend that needs one applies the top object first.
    ``capabilities`` says what the target cluster offers (Knative changes inference, queues per
    node pool change the queue); whether the cluster can run the result at all is
    ``berth.contracts.runnable.check``'s question."""
    workload = scheduling_ref(workload, submission, capabilities)
    return render_kind(submission, workload, trace_id, capabilities)


@singledispatch
def render_kind(
    submission: object,
    workload: WorkloadRef,  # noqa: ARG001
    trace_id: str | None,  # noqa: ARG001
    capabilities: ClusterCapabilities,  # noqa: ARG001
) -> list[dict[str, Any]]:
    """The objects of one kind of submission; a new kind registers its renderer here."""
    raise TypeError(f"no renderer for {type(submission).__name__}")


@render_kind.register
def _training(
    submission: TrainingSubmission,
    workload: WorkloadRef,
    trace_id: str | None,
    _capabilities: ClusterCapabilities,
) -> list[dict[str, Any]]:
    return render_training(workload, submission, trace_id)


@render_kind.register
def _workspace(
    submission: WorkspaceSubmission,
    workload: WorkloadRef,
    trace_id: str | None,
    _capabilities: ClusterCapabilities,
) -> list[dict[str, Any]]:
    return render_workspace(workload, submission, trace_id)


@render_kind.register
def _distributed(
    submission: DistributedSubmission,
    workload: WorkloadRef,
    trace_id: str | None,
    _capabilities: ClusterCapabilities,
) -> list[dict[str, Any]]:
    return render_distributed(workload, submission, trace_id)


@render_kind.register
def _inference(
    submission: InferenceSubmission,
    workload: WorkloadRef,
    trace_id: str | None,
    capabilities: ClusterCapabilities,
) -> list[dict[str, Any]]:
    return render_inference(workload, submission, trace_id, capabilities)


def object_refs(manifests: list[dict[str, Any]]) -> list[ObjectRef]:
    """What the objects are, for events: no specs, only kinds and names."""
    return [
        ObjectRef(
            apiVersion=m["apiVersion"],
            kind=m["kind"],
            name=m.get("metadata", {}).get("name", ""),
            namespace=m.get("metadata", {}).get("namespace"),
        )
        for m in manifests
    ]
