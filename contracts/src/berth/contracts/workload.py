"""Workload specs and submissions for every kind: workspace, training, distributed, inference.

Field names and shapes follow the Run:ai 2.18 creation requests so that users, policies and
tools can carry their knowledge over. Every spec field defaults to None, meaning "not set by the
submitter": policies must tell a user's choice from a default, so system defaults are published
(``SYSTEM_DEFAULTS`` and ``x-system-default`` in the JSON schema) rather than filled in here.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Self, cast

from pydantic import ConfigDict, Field, model_validator

from berth.contracts.quantity import Quantity, quantity_to_bytes
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
    SCALE_TO_ZERO_RETENTION_CHOICES,
    SYSTEM_DEFAULT_KEY,
    CredentialKeyRef,
    CredentialRef,
    NameValue,
    SpecModel,
    raise_problems,
    require_fields,
)
from berth.contracts.spec.compute import Compute, ExtendedResource, GpuRequestType, MigProfile
from berth.contracts.spec.container import (
    TOOL_TYPES,
    BaseSecurity,
    Capability,
    EnvironmentVariable,
    ExposedUrl,
    HttpGetAction,
    ImagePullPolicy,
    Port,
    Probe,
    ProbeHandler,
    Probes,
    RelatedUrl,
    Security,
    UidGidSource,
)
from berth.contracts.spec.inference import (
    SCALE_TO_ZERO_METRICS,
    Autoscaling,
    AutoscalingMetric,
    ModelSource,
    ServingPort,
)
from berth.contracts.spec.kinds import (
    SYSTEM_DEFAULTS,
    BaseSpec,
    CommonSpec,
    DistributedFramework,
    DistributedSpec,
    InferenceSpec,
    MasterSpec,
    TrainingSpec,
    WorkspaceSpec,
    applicable_system_defaults,
)
from berth.contracts.spec.placement import PodAffinity, Toleration
from berth.contracts.spec.storage import (
    S3,
    AccessModes,
    BaseStorage,
    ClaimInfo,
    ConfigMapVolume,
    DataVolume,
    Git,
    HostPath,
    Nfs,
    Pvc,
    SecretVolume,
    Storage,
)
from berth.contracts.workload_kinds import KIND_NAMES, WorkloadKind

__all__ = [
    "COMPLETING_KINDS",
    "DEFAULT_AUTO_DELETION_SECONDS",
    "DEFAULT_BACKOFF_LIMIT",
    "DEFAULT_HOST_IPC",
    "DEFAULT_HOST_NETWORK",
    "DEFAULT_METRIC_THRESHOLD",
    "DEFAULT_MIN_REPLICAS",
    "DEFAULT_NUM_WORKERS",
    "DEFAULT_SERVING_PROTOCOL",
    "DEFAULT_SLOTS_PER_WORKER",
    "DEFAULT_TERMINATE_AFTER_PREEMPTION",
    "DEFAULT_UID_GID_SOURCE",
    "DEFAULT_WORKSPACE_PRIORITY_CLASS",
    "S3",
    "SCALE_TO_ZERO_METRICS",
    "SCALE_TO_ZERO_RETENTION_CHOICES",
    "SPEC_MODELS",
    "SUBMISSION_CLASSES",
    "SUSPENDABLE_KINDS",
    "SYSTEM_DEFAULTS",
    "SYSTEM_DEFAULT_KEY",
    "TOOL_TYPES",
    "WORKLOAD_KINDS",
    "AccessModes",
    "Autoscaling",
    "AutoscalingMetric",
    "BaseSecurity",
    "BaseSpec",
    "BaseStorage",
    "Capability",
    "ClaimInfo",
    "CommonSpec",
    "Compute",
    "ConfigMapVolume",
    "CredentialKeyRef",
    "CredentialRef",
    "DataVolume",
    "DistributedFramework",
    "DistributedSpec",
    "DistributedSubmission",
    "EnvironmentVariable",
    "ExposedUrl",
    "ExtendedResource",
    "Git",
    "GpuRequestType",
    "HostPath",
    "HttpGetAction",
    "ImagePullPolicy",
    "InferenceSpec",
    "InferenceSubmission",
    "MasterSpec",
    "MigProfile",
    "ModelSource",
    "NameValue",
    "Nfs",
    "PodAffinity",
    "Port",
    "Probe",
    "ProbeHandler",
    "Probes",
    "Pvc",
    "Quantity",
    "RelatedUrl",
    "SecretVolume",
    "Security",
    "ServingPort",
    "SpecModel",
    "Storage",
    "SubmissionBase",
    "Toleration",
    "TrainingSpec",
    "TrainingSubmission",
    "UidGidSource",
    "WorkloadKind",
    "WorkloadSubmission",
    "WorkspaceSpec",
    "WorkspaceSubmission",
    "applicable_system_defaults",
    "quantity_to_bytes",
    "requested_gpus",
]


class SubmissionBase(SpecModel):
    """What every submission carries besides its kind and spec."""

    # ``kind`` picks the member of the submission union: a submission without it never decodes.
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=require_fields("kind"))

    COMPLETES: ClassVar[bool] = False
    """Whether a workload of this kind ends by itself (reaches Completed); the others run until
    they fail or are deleted."""
    SUSPENDABLE: ClassVar[bool] = True
    """Whether a workload of this kind may be suspended and resumed (Run:ai: not inference,
    which is scaled instead)."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
        description="Workload name (a DNS label starting with a letter).",
    )
    useGivenNameAsPrefix: bool = Field(
        default=False, description="Append a random suffix to the name."
    )
    projectId: str = Field(min_length=1, description="Project name.")
    clusterId: str | None = Field(
        default=None, description="Cluster to run on; the project's cluster when unset."
    )
    template: str | None = Field(
        default=None, min_length=1, description="Name of a workload template asset to start from."
    )
    environment: str | None = Field(
        default=None, min_length=1, description="Name of an environment asset to use."
    )
    compute: str | None = Field(
        default=None, min_length=1, description="Name of a compute resource asset to use."
    )
    dataSources: list[str] | None = Field(
        default=None, description="Names of data source assets to mount."
    )


# The StatefulSet controller labels each pod with its name plus "-" and a 10-character revision
# hash (controller-revision-hash), and a label value holds at most 63 characters: a longer
# name leaves the StatefulSet with no pod ever created (kubernetes/kubernetes#64023).
WORKSPACE_NAME_MAX = 52
# Intake appends "-" and six hex digits to a name given as a prefix.
NAME_SUFFIX_LENGTH = 7


class WorkspaceSubmission(SubmissionBase):
    """A request for a workspace."""

    kind: Literal["workspace"] = "workspace"
    spec: WorkspaceSpec = Field(description="The workspace spec.")

    @model_validator(mode="after")
    def _check_name_length(self) -> Self:
        limit = WORKSPACE_NAME_MAX - (NAME_SUFFIX_LENGTH if self.useGivenNameAsPrefix else 0)
        if len(self.name) > limit:
            raise ValueError(
                f"name: a workspace name has at most {limit} characters (got {len(self.name)}): "
                f"its pods are labelled with the name and an 11-character revision hash, "
                "and a label value holds 63"
            )
        return self


class TrainingSubmission(SubmissionBase):
    """A request for a single-node training."""

    COMPLETES: ClassVar[bool] = True
    kind: Literal["training"] = "training"
    spec: TrainingSpec = Field(description="The training spec.")


class DistributedSubmission(SubmissionBase):
    """A request for a distributed training: workers, and a master unless noMaster."""

    COMPLETES: ClassVar[bool] = True
    kind: Literal["distributed"] = "distributed"
    spec: DistributedSpec = Field(description="The spec of the workers.")
    masterSpecSameAsWorker: bool = Field(
        default=True, description="The master uses the workers' spec; false requires masterSpec."
    )
    masterSpec: MasterSpec | None = Field(
        default=None, description="The master's own spec; only when masterSpecSameAsWorker false."
    )
    noMaster: bool | None = Field(
        default=None, description='"Workers only": run no separate master pod.'
    )

    @model_validator(mode="after")
    def _check_master(self) -> Self:
        problems: list[str] = []
        if self.masterSpec is not None and self.masterSpecSameAsWorker:
            problems.append("masterSpec requires masterSpecSameAsWorker false")
        if self.masterSpec is None and not self.masterSpecSameAsWorker:
            problems.append("masterSpec is required when masterSpecSameAsWorker is false")
        if self.noMaster and (self.masterSpec is not None or not self.masterSpecSameAsWorker):
            problems.append("noMaster excludes a master spec")
        if self.noMaster and self.spec.distributedFramework == "XGBoost":
            # The training-operator webhook requires xgbReplicaSpecs[Master].
            problems.append("noMaster: XGBoost needs a master")
        raise_problems(problems)
        return self


class InferenceSubmission(SubmissionBase):
    """A request for an inference service."""

    SUSPENDABLE: ClassVar[bool] = False
    kind: Literal["inference"] = "inference"
    spec: InferenceSpec = Field(description="The inference spec.")


WorkloadSubmission = Annotated[
    WorkspaceSubmission | TrainingSubmission | DistributedSubmission | InferenceSubmission,
    Field(discriminator="kind"),
]

SUBMISSION_CLASSES: tuple[type[SubmissionBase], ...] = typing.get_args(
    typing.get_args(WorkloadSubmission)[0]
)
"""The members of the submission union: the one place a workload kind is added."""


def _kind_of(submission: type[SubmissionBase]) -> WorkloadKind:
    (kind,) = typing.get_args(submission.model_fields["kind"].annotation)
    return cast(WorkloadKind, kind)


WORKLOAD_KINDS: tuple[WorkloadKind, ...] = tuple(_kind_of(c) for c in SUBMISSION_CLASSES)
"""Every workload kind, in the union's order; derived from the submission union."""

COMPLETING_KINDS: frozenset[WorkloadKind] = frozenset(
    _kind_of(c) for c in SUBMISSION_CLASSES if c.COMPLETES
)
"""The kinds that end by themselves (Jobs and Kubeflow jobs have a success condition)."""

SUSPENDABLE_KINDS: frozenset[WorkloadKind] = frozenset(
    _kind_of(c) for c in SUBMISSION_CLASSES if c.SUSPENDABLE
)
"""The kinds a suspend or a resume applies to."""

SPEC_MODELS: dict[WorkloadKind, type[SpecModel]] = {
    _kind_of(c): cast(type[SpecModel], c.model_fields["spec"].annotation)
    for c in SUBMISSION_CLASSES
}
"""The spec model of each kind (a distributed training's workers; its master has MasterSpec)."""

# WorkloadKind is the static (typing) spelling of the same list: a kind added to the union and
# not to the Literal (or the reverse) fails at import, not in a service.
if set(KIND_NAMES) != set(WORKLOAD_KINDS):
    raise TypeError(
        f"WorkloadKind {KIND_NAMES} differs from the submission union's kinds {WORKLOAD_KINDS}"
    )


def requested_gpus(submission: Mapping[str, Any]) -> float:
    """GPUs a submission (in its JSON form) asks for over all its pods; a portion counts as
    that fraction of a device. Quota is reckoned in these units."""
    spec = submission.get("spec") or {}
    compute = spec.get("compute") or {}
    devices = float(compute.get("gpuDevicesRequest") or 0)
    if compute.get("gpuRequestType") == "portion" and compute.get("gpuPortionRequest"):
        devices *= float(compute["gpuPortionRequest"])
    pods = 1
    if submission.get("kind") == "distributed":
        # An MPI launcher only starts mpirun: it gets no GPU.
        master = not submission.get("noMaster") and spec.get("distributedFramework") != "MPI"
        pods = int(spec.get("numWorkers") or 1) + (1 if master else 0)
    return devices * pods
