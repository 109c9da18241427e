"""The spec of each workload kind, and the system defaults that apply to a spec."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from berth.contracts.spec.base import (
    DEFAULT_AUTO_DELETION_SECONDS,
    DEFAULT_BACKOFF_LIMIT,
    DEFAULT_HOST_IPC,
    DEFAULT_HOST_NETWORK,
    DEFAULT_METRIC_THRESHOLD,
    DEFAULT_MIN_REPLICAS,
    DEFAULT_NUM_WORKERS,
    DEFAULT_SERVING_PROTOCOL,
    DEFAULT_SLOTS_PER_WORKER,
    DEFAULT_TERMINATE_AFTER_PREEMPTION,
    DEFAULT_UID_GID_SOURCE,
    DEFAULT_WORKSPACE_PRIORITY_CLASS,
    SYSTEM_DEFAULT_KEY,
    NameValue,
    SpecModel,
    duplicates,
    raise_problems,
    system_default,
)
from berth.contracts.spec.compute import Compute
from berth.contracts.spec.container import (
    BaseSecurity,
    EnvironmentVariable,
    ExposedUrl,
    ImagePullPolicy,
    Port,
    Probes,
    RelatedUrl,
    Security,
)
from berth.contracts.spec.inference import Autoscaling, ModelSource, ServingPort
from berth.contracts.spec.placement import PodAffinity, Toleration
from berth.contracts.spec.storage import BaseStorage, Storage

DistributedFramework = Literal["PyTorch", "TF", "MPI", "XGBoost"]
_FRAMEWORK_SPELLINGS: dict[str, str] = {
    "pytorch": "PyTorch",
    "tf": "TF",
    "tensorflow": "TF",
    "mpi": "MPI",
    "xgboost": "XGBoost",
}

SYSTEM_DEFAULTS: dict[str, object] = {
    "backoffLimit": DEFAULT_BACKOFF_LIMIT,
    "autoDeletionTimeAfterCompletionSeconds": DEFAULT_AUTO_DELETION_SECONDS,
    "terminateAfterPreemption": DEFAULT_TERMINATE_AFTER_PREEMPTION,
    "priorityClass": DEFAULT_WORKSPACE_PRIORITY_CLASS,
    "numWorkers": DEFAULT_NUM_WORKERS,
    "slotsPerWorker": DEFAULT_SLOTS_PER_WORKER,
    "autoscaling.minReplicas": DEFAULT_MIN_REPLICAS,
    "autoscaling.metricThreshold": DEFAULT_METRIC_THRESHOLD,
    "servingPort.protocol": DEFAULT_SERVING_PROTOCOL,
    "security.uidGidSource": DEFAULT_UID_GID_SOURCE,
    "security.hostIpc": DEFAULT_HOST_IPC,
    "security.hostNetwork": DEFAULT_HOST_NETWORK,
}
"""Every system default, by dotted path relative to ``spec``.

Not every path applies to every kind (inference has no backoffLimit, priorityClass "build" is a
workspace value, slotsPerWorker is MPI-only): use ``applicable_system_defaults`` to get the
ones that apply to one spec.
"""


# Lists whose items are told apart by name.
_NAMED_LISTS = ("environmentVariables", "annotations", "labels", "tolerations")


class BaseSpec(SpecModel):
    """Fields every kind of workload accepts, inference included."""

    # --- container
    image: str | None = Field(default=None, min_length=1, description="Container image.")
    imagePullPolicy: ImagePullPolicy | None = Field(
        default=None, description="Always for :latest, else IfNotPresent, when unset."
    )
    command: str | None = Field(default=None, description="Entry point of the container.")
    args: str | None = Field(default=None, description="Arguments of the command.")
    workingDir: str | None = Field(default=None, description="Working directory.")
    createHomeDir: bool | None = Field(
        default=None, description="Create a home directory for the container's user."
    )
    environmentVariables: list[EnvironmentVariable] | None = Field(
        default=None, description="Environment variables of the container."
    )
    probes: Probes | None = Field(default=None, description="Container probes.")
    # --- placement
    nodeType: str | None = Field(
        default=None, description="Node type (node label run.ai/type) to run on."
    )
    nodePools: list[str] | None = Field(
        default=None, description="Node pools to run on, in order of priority."
    )
    podAffinity: PodAffinity | None = Field(default=None, description="Pod affinity rule.")
    tolerations: list[Toleration] | None = Field(default=None, description="Taint tolerations.")
    # --- metadata
    annotations: list[NameValue] | None = Field(default=None, description="Pod annotations.")
    labels: list[NameValue] | None = Field(default=None, description="Pod labels.")
    # --- networking and tools
    ports: list[Port] | None = Field(default=None, description="Ports exposed by a Service.")
    exposedUrls: list[ExposedUrl] | None = Field(
        default=None, description="Tool connections exposed by URL, with who may access them."
    )
    relatedUrls: list[RelatedUrl] | None = Field(
        default=None, description="Links to external services related to the workload."
    )
    # --- resources
    compute: Compute | None = Field(default=None, description="Requested compute resources.")
    storage: BaseStorage | None = Field(default=None, description="Volumes and data sources.")
    security: BaseSecurity | None = Field(default=None, description="Security settings.")
    # --- general
    autoDeletionTimeAfterCompletionSeconds: int | None = Field(
        default=None,
        ge=0,
        description="Seconds after completion or failure before deletion; 0 deletes at once.",
        json_schema_extra=system_default(DEFAULT_AUTO_DELETION_SECONDS),
    )
    allowOverQuota: bool | None = Field(
        default=None, description="Let the workload use resources beyond the project's quota."
    )

    @model_validator(mode="after")
    def _check_unique_names(self) -> Self:
        # Runs on every validation of every spec: a list of fewer than two items repeats nothing,
        # and most specs have no list or lists of one.
        problems: list[str] = []
        pools = self.nodePools
        if pools is not None and len(pools) > 1:
            problems.extend(f"nodePools lists {p!r} twice" for p in duplicates(pools))
        for field in _NAMED_LISTS:
            items: list[NameValue] | None = getattr(self, field)
            if items is not None and len(items) > 1:
                problems.extend(
                    f"{field} has two items named {name!r}"
                    for name in duplicates(item.name for item in items)
                )
        if problems:
            raise_problems(problems)
        return self


class CommonSpec(BaseSpec):
    """Fields of workspace, training and distributed workers and master (not inference)."""

    tty: bool | None = Field(default=None, description="Allocate a TTY; requires stdin.")
    stdin: bool | None = Field(default=None, description="Keep stdin open for the container.")
    storage: Storage | None = Field(default=None, description="Volumes and data sources.")
    security: Security | None = Field(default=None, description="Security settings.")
    backoffLimit: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Retries before the workload is marked failed.",
        json_schema_extra=system_default(DEFAULT_BACKOFF_LIMIT),
    )
    terminateAfterPreemption: bool | None = Field(
        default=None,
        description="Terminate the workload instead of requeueing it after preemption.",
        json_schema_extra=system_default(DEFAULT_TERMINATE_AFTER_PREEMPTION),
    )

    @model_validator(mode="after")
    def _check_tty(self) -> Self:
        if self.tty and not self.stdin:
            raise ValueError("tty requires stdin true")
        return self


class WorkspaceSpec(CommonSpec):
    """An interactive workspace (notebook, IDE) that runs until stopped."""

    priorityClass: Literal["build", "interactive-preemptible"] | None = Field(
        default=None,
        description="build runs within quota; interactive-preemptible may go over quota.",
        json_schema_extra=system_default(DEFAULT_WORKSPACE_PRIORITY_CLASS),
    )

    @model_validator(mode="after")
    def _check_priority(self) -> Self:
        if self.allowOverQuota and self.priorityClass == "build":
            raise ValueError("allowOverQuota requires priorityClass 'interactive-preemptible'")
        if self.allowOverQuota is False and self.priorityClass == "interactive-preemptible":
            raise ValueError("priorityClass 'interactive-preemptible' requires allowOverQuota")
        return self


class TrainingSpec(CommonSpec):
    """A single-node training that runs to completion."""

    priorityClass: Literal["train"] | None = Field(
        default=None, description="Priority class; training has only train."
    )
    completions: int | None = Field(
        default=None, ge=1, description="Successful pods needed (hyper-parameter optimisation)."
    )
    parallelism: int | None = Field(
        default=None, ge=1, description="Pods run at once (hyper-parameter optimisation)."
    )


class MasterSpec(CommonSpec):
    """The master of a distributed workload, when set up differently from the workers."""


class DistributedSpec(CommonSpec):
    """The workers of a distributed training (and the master, unless it has its own spec)."""

    distributedFramework: DistributedFramework = Field(
        default="PyTorch", description="The distributed training framework."
    )
    numWorkers: int | None = Field(
        default=None,
        ge=1,
        description="Number of workers.",
        json_schema_extra=system_default(DEFAULT_NUM_WORKERS),
    )
    slotsPerWorker: int | None = Field(
        default=None,
        ge=1,
        description="Slots per worker in the MPI hostfile; MPI only.",
        json_schema_extra=system_default(DEFAULT_SLOTS_PER_WORKER),
    )
    minReplicas: int | None = Field(
        default=None, ge=1, description="Fewest workers of an elastic job; PyTorch only."
    )
    maxReplicas: int | None = Field(
        default=None, ge=1, description="Most workers of an elastic job; PyTorch only."
    )

    @field_validator("distributedFramework", mode="before")
    @classmethod
    def _framework_in_any_case(cls, value: object) -> object:
        # Users write pytorch, tf, mpi or xgboost; the wire keeps Run:ai's spelling.
        if isinstance(value, str):
            return _FRAMEWORK_SPELLINGS.get(value.lower(), value)
        return value

    @model_validator(mode="after")
    def _check_framework(self) -> Self:
        problems: list[str] = []
        framework = self.distributedFramework
        if self.slotsPerWorker is not None and framework != "MPI":
            problems.append(f"slotsPerWorker applies only to MPI, not {framework}")
        for name in ("minReplicas", "maxReplicas"):
            if getattr(self, name) is not None and framework != "PyTorch":
                problems.append(f"{name} applies only to PyTorch, not {framework}")
        low, high = self.minReplicas, self.maxReplicas
        if low is not None and high is not None and high < low:
            problems.append("maxReplicas must be >= minReplicas")
        workers = self.numWorkers
        if workers is not None and (
            (low is not None and workers < low) or (high is not None and workers > high)
        ):
            problems.append("numWorkers must be between minReplicas and maxReplicas")
        raise_problems(problems)
        return self


class InferenceSpec(BaseSpec):
    """A served model or custom inference server, scaled by replicas."""

    servingPort: ServingPort | None = Field(
        default=None, description="The port the inference server listens on."
    )
    autoscaling: Autoscaling | None = Field(default=None, description="Replica autoscaling.")
    model: ModelSource | None = Field(
        default=None, description="The model to serve from a catalog; unset for custom inference."
    )


def _within_quota(spec: BaseSpec) -> bool:
    # Over-quota workspaces get interactive-preemptible, so "build" is their default only in quota.
    return isinstance(spec, WorkspaceSpec) and not spec.allowOverQuota


def _is_mpi(spec: BaseSpec) -> bool:
    return isinstance(spec, DistributedSpec) and spec.distributedFramework == "MPI"


def _has_metric(spec: BaseSpec) -> bool:
    # The form asks for a threshold only once a metric is chosen (maxReplicas >= 2).
    return (
        isinstance(spec, InferenceSpec)
        and spec.autoscaling is not None
        and spec.autoscaling.metric is not None
    )


def _completes(spec: BaseSpec) -> bool:
    # A workspace runs until it is stopped: there is no completion to count from.
    return not isinstance(spec, WorkspaceSpec)


# Defaults that apply only under a condition on the rest of the spec.
_DEFAULT_CONDITIONS: dict[str, Callable[[BaseSpec], bool]] = {
    "autoDeletionTimeAfterCompletionSeconds": _completes,
    "priorityClass": _within_quota,
    "slotsPerWorker": _is_mpi,
    "autoscaling.metricThreshold": _has_metric,
}


def applicable_system_defaults(spec: BaseSpec) -> dict[str, object]:
    """System defaults for the fields this spec leaves unset, by dotted path (e.g. backoffLimit).

    Only fields of objects the spec sets are considered: an absent ``autoscaling`` stays absent.
    """
    found: dict[str, object] = {}

    def walk(model: BaseModel, prefix: str) -> None:
        values = model.__dict__
        for name, default in _system_defaults_of(type(model)):
            value = values[name]
            if isinstance(value, BaseModel):
                walk(value, f"{prefix}{name}.")
            elif value is None and default is not _NO_DEFAULT:
                path = f"{prefix}{name}"
                condition = _DEFAULT_CONDITIONS.get(path)
                if condition is None or condition(spec):
                    found[path] = default

    walk(spec, "")
    return found


_NO_DEFAULT = object()


@functools.cache
def _system_defaults_of(model: type[BaseModel]) -> tuple[tuple[str, object], ...]:
    """Each field of ``model`` with its system default (``_NO_DEFAULT`` when it has none), in
    field order: read once per model class rather than from its field infos on every call."""
    fields: list[tuple[str, object]] = []
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and SYSTEM_DEFAULT_KEY in extra:
            fields.append((name, extra[SYSTEM_DEFAULT_KEY]))
        else:
            fields.append((name, _NO_DEFAULT))
    return tuple(fields)
