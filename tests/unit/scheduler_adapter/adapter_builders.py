"""Submissions and workload refs for the scheduler-adapter unit tests."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from berth.contracts.events import WorkloadRef
from berth.contracts.workload import WorkloadSubmission
from berth.scheduler_adapter.rendering import render

_SUBMISSION: TypeAdapter[Any] = TypeAdapter(WorkloadSubmission)
NAMESPACE = "runai-vision"


def ref(name: str, kind: str = "training", *, workload_id: str | None = None) -> WorkloadRef:
    return WorkloadRef(
        workloadId=workload_id or f"wl-{name}",
        name=name,
        kind=kind,  # type: ignore[arg-type]
        project="vision",
        clusterId="cluster-1",
        namespace=NAMESPACE,
        queue="vision-queue",
        createdBy="alice",
    )


def submission(kind: str, name: str, spec: dict[str, Any], **top: Any) -> Any:
    return _SUBMISSION.validate_python(
        {"kind": kind, "name": name, "projectId": "vision", "spec": spec, **top}
    )


def sim_annotations(
    *, runtime: float | None = None, startup: float | None = None, fail: str | None = None
) -> list[dict[str, str]]:
    values = {
        "berth.dev/sim-runtime-seconds": runtime,
        "berth.dev/sim-startup-seconds": startup,
        "berth.dev/sim-fail": fail,
    }
    return [
        {"name": key, "value": str(value)} for key, value in values.items() if value is not None
    ]


def manifests(
    kind: str,
    name: str,
    *,
    gpus: int | None = None,
    portion: float | None = None,
    pools: list[str] | None = None,
    runtime: float | None = None,
    startup: float | None = None,
    fail: str | None = None,
    extra: dict[str, Any] | None = None,
    top: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Rendered objects of one workload, with the simulated-cluster knobs set."""
    compute: dict[str, Any] = {}
    if gpus is not None:
        compute["gpuDevicesRequest"] = gpus
    if portion is not None:
        compute["gpuDevicesRequest"] = 1
        compute["gpuPortionRequest"] = portion
    spec: dict[str, Any] = {"image": "registry.example/train:1", "compute": compute}
    if pools:
        spec["nodePools"] = pools
    annotations = sim_annotations(runtime=runtime, startup=startup, fail=fail)
    if annotations:
        spec["annotations"] = annotations
    spec.update(extra or {})
    return render(ref(name, kind), submission(kind, name, spec, **(top or {})), trace_id=None)
