"""Render a workload submission into the Kubernetes objects a cluster should hold (pure).

One renderer per submission kind, in its own module, registered on ``registry.render_kind``; the
other modules of this package build the parts (pods, placement, storage, tools...)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from berth.contracts.events import ObjectRef, WorkloadRef
from berth.contracts.workload import WorkloadSubmission
from berth.scheduler_adapter.rendering.capabilities import ClusterCapabilities, from_config
from berth.scheduler_adapter.rendering.registry import render_kind

__all__ = [
    "ClusterCapabilities",
    "from_config",
    "object_refs",
    "render",
    "render_kind",
    "scheduling_ref",
]

_NO_CAPABILITIES = ClusterCapabilities()

# Every module of the package is imported, so that each kind's renderer is registered without a
# list of kinds here.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


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
