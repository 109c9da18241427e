"""What berth knows of each top-level Kubernetes kind a workload becomes: the pods it wants,
how it is suspended, whether it runs to completion and the condition it reports on success.

Both cluster backends read workloads through this table (the Kubernetes backend to count the
pods it expects and to suspend; the simulated cluster to run them), so a new top kind is one
entry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from berth.scheduler_adapter.labels import KNATIVE_API_VERSION, KNATIVE_MIN_SCALE

Replicas = Literal["parallelism", "replicas", "min-scale", "replica-specs"]
# Where a suspend is written: Kubernetes' own flag, the Kubeflow run policy's, or a scale to
# zero (and back); None: the kind cannot be suspended (Knative scales by itself).
SuspendPath = Literal["spec.suspend", "spec.runPolicy.suspend", "spec.replicas"]


@dataclass(frozen=True)
class TopKind:
    api_version: str
    kind: str
    replicas: Replicas  # where the number of pods it wants is read
    suspend: SuspendPath | None
    success_condition: str | None  # the condition it reports on success; None: runs until stopped

    @property
    def finite(self) -> bool:
        """Runs to completion (a Job, a Kubeflow job) rather than until stopped."""
        return self.success_condition is not None

    @property
    def kubeflow(self) -> bool:
        return self.replicas == "replica-specs"


def _kubeflow(kind: str, api_version: str = "kubeflow.org/v1") -> TopKind:
    return TopKind(api_version, kind, "replica-specs", "spec.runPolicy.suspend", "Succeeded")


TOP_KINDS: tuple[TopKind, ...] = (
    TopKind("batch/v1", "Job", "parallelism", "spec.suspend", "Complete"),
    TopKind("apps/v1", "StatefulSet", "replicas", "spec.replicas", None),
    TopKind("apps/v1", "Deployment", "replicas", "spec.replicas", None),
    TopKind(KNATIVE_API_VERSION, "Service", "min-scale", None, None),
    _kubeflow("PyTorchJob"),
    _kubeflow("TFJob"),
    _kubeflow("XGBoostJob"),
    _kubeflow("MPIJob", "kubeflow.org/v2beta1"),
)
KUBEFLOW_KINDS: frozenset[str] = frozenset(t.kind for t in TOP_KINDS if t.kubeflow)
# A Knative Service shares its kind with the core Service: kinds alone name only the others.
_BY_KIND = {t.kind: t for t in TOP_KINDS if t.api_version != KNATIVE_API_VERSION}
_KNATIVE = next(t for t in TOP_KINDS if t.api_version == KNATIVE_API_VERSION)


def top_kind(obj: Mapping[str, Any]) -> TopKind | None:
    """The top kind ``obj`` is, or None when it is not a top object."""
    kind = obj.get("kind")
    if kind == _KNATIVE.kind:
        return _KNATIVE if obj.get("apiVersion") == _KNATIVE.api_version else None
    return _BY_KIND.get(str(kind))


def top_kind_names() -> list[str]:
    return sorted({t.kind for t in TOP_KINDS})


def replica_specs(spec: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A Kubeflow job's ``<Framework>ReplicaSpecs`` (roles to replica specs)."""
    found = next((value for key, value in spec.items() if key.endswith("ReplicaSpecs")), None)
    return found if isinstance(found, Mapping) else None


def _described(top: Mapping[str, Any]) -> TopKind:
    kind = top_kind(top)
    if kind is None:
        raise ValueError(f"{top.get('apiVersion')} {top.get('kind')} is not a top-level kind")
    return kind


def _count(kind: TopKind, spec: Mapping[str, Any]) -> int:
    """Pods of a kind that is not a Kubeflow job."""
    if kind.replicas == "parallelism":
        return int(spec.get("parallelism", 1))
    if kind.replicas == "replicas":
        return int(spec.get("replicas", 1))
    # Knative scales with traffic; without any it idles at its minimum scale.
    annotations = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    return int(annotations.get(KNATIVE_MIN_SCALE, 1))


def _templates(top: Mapping[str, Any]) -> list[tuple[str, int, Mapping[str, Any]]]:
    """Each pod template of the top object (one per Kubeflow role) as (the name its pods
    start with, how many pods it makes, the template)."""
    kind = _described(top)
    name = str(top["metadata"]["name"])
    spec: Mapping[str, Any] = top.get("spec") or {}
    if kind.kubeflow:
        return [
            (f"{name}-{role.lower()}", int(r.get("replicas", 1)), r.get("template") or {})
            for role, r in (replica_specs(spec) or {}).items()
        ]
    return [(name, _count(kind, spec), spec.get("template") or {})]


def pod_templates(top: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every pod the top object wants, by name, with its template (empty for a Kubeflow job
    without replica specs)."""
    return [
        (f"{prefix}-{index}", template)
        for prefix, count, template in _templates(top)
        for index in range(count)
    ]


def templates(top: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The top object's pod templates, once each, whether it wants pods now or not (a Knative
    service scaled to zero, a suspended job)."""
    return [template for _, _, template in _templates(top)]


def expected_pods(top: Mapping[str, Any]) -> int:
    """How many pods the top object wants."""
    kind = _described(top)
    spec: Mapping[str, Any] = top.get("spec") or {}
    if kind.kubeflow:
        return sum(int(r.get("replicas", 1)) for r in (replica_specs(spec) or {}).values())
    return _count(kind, spec)
