"""Read what a workload's manifests ask for: its pods and their demands, gang, lifecycle, timing.

The simulated cluster consumes exactly the objects a real cluster would be given, so this reads
plain Kubernetes fields and KAI annotations, never berth's own submission models.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from berth.contracts.workload import DEFAULT_BACKOFF_LIMIT
from berth.scheduler_adapter import labels
from berth.scheduler_adapter.backend import top_object
from berth.scheduler_adapter.simulation.capacity import GPU_MILLI, PodDemand
from berth.scheduler_adapter.simulation.quantity import millis, parse_quantity, units
from berth.scheduler_adapter.top_kinds import (
    KUBEFLOW_KINDS,
    pod_templates,
    replica_specs,
    top_kind,
    top_kind_names,
)

DEFAULT_FINITE_RUNTIME = 10.0
DEFAULT_STARTUP = 1.0
FAIL_MODES = frozenset({"crash", "image-pull"})
# Runtimes and start-up times the simulation accepts: up to a year.
MAX_SIMULATED_SECONDS = 365 * 24 * 3600.0
# Values of the PriorityClasses KAI installs. A pod naming none (or one the cluster lacks)
# gets Kubernetes' default priority, 0.
PRIORITY_VALUES = {"inference": 125, "build": 100, "build-preemptible": 75, "train": 50}


@dataclass(frozen=True)
class WorkloadShape:
    kind: str
    name: str
    pods: tuple[tuple[str, PodDemand], ...]  # (pod name, demand) for every pod wanted
    image: str
    gang: int  # pods KAI must place together before any runs (its podgrouper's minAvailable)
    finite: bool  # runs to completion (Job, Kubeflow job) rather than until stopped
    backoff_limit: int
    ttl_seconds: float | None
    runtime: float | None  # None: runs until stopped
    startup: float
    fail: str | None
    success_condition: str  # what the top object reports on success
    priority: int  # higher goes first in a scheduling pass
    note: str = ""  # the top object's phase note


def shape_of(objects: Sequence[Mapping[str, Any]]) -> WorkloadShape:
    top = top_object(objects)
    described = top_kind(top) if top is not None else None
    if top is None or described is None:
        raise ValueError(f"none of {', '.join(top_kind_names())} among the workload's objects")
    kind = str(top["kind"])
    name = str(top["metadata"]["name"])
    spec: Mapping[str, Any] = top.get("spec") or {}
    if described.kubeflow and replica_specs(spec) is None:
        raise ValueError(f"{kind} {name} has no replica specs")
    templates = pod_templates(top)
    pods = tuple((pod_name, pod_demand(template)) for pod_name, template in templates)
    annotations: Mapping[str, str] = top["metadata"].get("annotations") or {}
    finite = described.finite
    lifecycle = (spec.get("runPolicy") or {}) if kind in KUBEFLOW_KINDS else spec
    fail = annotations.get(labels.SIM_FAIL_ANNOTATION) or None
    if fail is not None and fail not in FAIL_MODES:
        raise ValueError(
            f"{labels.SIM_FAIL_ANNOTATION} must be one of {sorted(FAIL_MODES)}: {fail!r}"
        )
    default_runtime = DEFAULT_FINITE_RUNTIME if finite else None
    backoff = lifecycle.get("backoffLimit")
    ttl = lifecycle.get("ttlSecondsAfterFinished")
    return WorkloadShape(
        kind=kind,
        name=name,
        pods=pods,
        image=_first_image(templates),
        gang=gang_size(kind, spec, len(pods)),
        finite=finite,
        backoff_limit=DEFAULT_BACKOFF_LIMIT if backoff is None else int(backoff),
        ttl_seconds=float(ttl) if finite and ttl is not None else None,
        runtime=_seconds(annotations, labels.SIM_RUNTIME_ANNOTATION, default_runtime),
        startup=_seconds(annotations, labels.SIM_STARTUP_ANNOTATION, DEFAULT_STARTUP) or 0.0,
        fail=fail,
        # A kind that runs until stopped has no success condition of its own; its pods can
        # still all exit in the simulation (an injected runtime), which reads as success.
        success_condition=described.success_condition or "Succeeded",
        priority=_priority(top, templates),
        note=str(annotations.get(labels.PHASE_NOTE_ANNOTATION, "")),
    )


def _first_image(templates: list[tuple[str, Mapping[str, Any]]]) -> str:
    for _, template in templates:
        for container in (template.get("spec") or {}).get("containers") or ():
            if container.get("image"):
                return str(container["image"])
    return ""


def gang_size(kind: str, spec: Mapping[str, Any], pods: int) -> int:
    """The minAvailable of the PodGroup KAI's podgrouper builds for the top object: every
    replica of a Kubeflow job, unless runPolicy.schedulingPolicy.minAvailable or (PyTorch)
    elasticPolicy.minReplicas says fewer; 1 for the other kinds, whose pods go one by one."""
    if kind not in KUBEFLOW_KINDS:
        return 1
    scheduling = (spec.get("runPolicy") or {}).get("schedulingPolicy") or {}
    if scheduling.get("minAvailable") is not None:
        return int(scheduling["minAvailable"])
    elastic = spec.get("elasticPolicy") or {}
    if kind == "PyTorchJob" and elastic.get("minReplicas") is not None:
        return int(elastic["minReplicas"])
    return pods


def _priority(top: Mapping[str, Any], templates: list[tuple[str, Mapping[str, Any]]]) -> int:
    # The pods' label wins over the top object's: it is what the scheduler reads off the pods.
    sources = [(template.get("metadata") or {}).get("labels") for _, template in templates[:1]]
    for found in [*sources, top["metadata"].get("labels")]:
        if found and labels.PRIORITY_CLASS_LABEL in found:
            return PRIORITY_VALUES.get(str(found[labels.PRIORITY_CLASS_LABEL]), 0)
    return 0


def _seconds(annotations: Mapping[str, str], key: str, default: float | None) -> float | None:
    value = annotations.get(key)
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number of seconds: {value!r}") from None
    # NaN compares false with everything: a NaN runtime never ends and spins the scheduler.
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SIMULATED_SECONDS:
        raise ValueError(f"{key} must be between 0 and {MAX_SIMULATED_SECONDS:g}: {value!r}")
    return seconds


def pod_demand(template: Mapping[str, Any]) -> PodDemand:
    metadata: Mapping[str, Any] = template.get("metadata") or {}
    annotations: Mapping[str, str] = metadata.get("annotations") or {}
    spec: Mapping[str, Any] = template.get("spec") or {}
    gpus = cpu = memory = 0
    for container in spec.get("containers") or ():
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        # Kubernetes defaults a missing request to the limit.
        gpus += units(limits.get(labels.GPU_RESOURCE, requests.get(labels.GPU_RESOURCE, 0)))
        cpu += millis(requests.get("cpu", limits.get("cpu", 0)))
        memory += units(requests.get("memory", limits.get("memory", 0)))
    fraction = annotations.get(labels.GPU_FRACTION_ANNOTATION)
    shared_milli = round(parse_quantity(fraction) * GPU_MILLI) if fraction else 0
    shared_mib = units(annotations.get(labels.GPU_MEMORY_ANNOTATION, 0)) if not shared_milli else 0
    shared = bool(shared_milli or shared_mib)
    devices = int(annotations.get(labels.GPU_FRACTION_DEVICES_ANNOTATION, 1)) if shared else 0
    pools, restricted = _pool_order(spec)
    return PodDemand(
        gpus=0 if shared else gpus,
        gpu_milli=shared_milli,
        gpu_memory_mib=shared_mib,
        shared_devices=devices,
        cpu_milli=cpu,
        memory=memory,
        pools=pools,
        restricted=restricted,
        node_type=_node_type(spec),
    )


def _expressions(terms: Any) -> list[Mapping[str, Any]]:
    return [expr for term in terms or () for expr in term.get("matchExpressions") or ()]


def _pool_order(spec: Mapping[str, Any]) -> tuple[tuple[str, ...], bool]:
    """Allowed pools, most preferred first, and whether the pod may go elsewhere."""
    selector = (spec.get("nodeSelector") or {}).get(labels.NODE_POOL_LABEL)
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity")) or {}
    required_terms = (affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get(
        "nodeSelectorTerms"
    )
    required: list[str] | None = [selector] if selector else None
    for expr in _expressions(required_terms):
        if expr.get("key") == labels.NODE_POOL_LABEL and expr.get("operator") == "In":
            values = [str(value) for value in expr.get("values") or ()]
            required = values if required is None else [v for v in required if v in values]
    weights: dict[str, int] = {}
    for preferred in affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ():
        for expr in _expressions([preferred.get("preference") or {}]):
            if expr.get("key") == labels.NODE_POOL_LABEL and expr.get("operator") == "In":
                for value in expr.get("values") or ():
                    weights[str(value)] = weights.get(str(value), 0) + int(preferred["weight"])
    candidates = required if required is not None else list(weights)
    order = sorted(candidates, key=lambda pool: (-weights.get(pool, 0), candidates.index(pool)))
    return tuple(dict.fromkeys(order)), required is not None


def _node_type(spec: Mapping[str, Any]) -> str:
    return str((spec.get("nodeSelector") or {}).get(labels.NODE_TYPE_LABEL) or "")
