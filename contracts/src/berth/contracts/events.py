"""Every event berth publishes, version 1. A published shape never changes: add optional fields,
or add a V2 class (and subject) beside the V1 one."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from berth.contracts.capabilities import ClusterCapabilities
from berth.contracts.envelope import Actor, Event

# Re-exported for existing importers; the phase facts live in berth.contracts.phases.
from berth.contracts.phases import TERMINAL_PHASES as TERMINAL_PHASES
from berth.contracts.phases import Phase as Phase
from berth.contracts.phases import WorkloadAction as WorkloadAction
from berth.contracts.roles import (
    AGENT,
    CATALOG,
    CLUSTER,
    CLUSTER_SYNC,
    INTAKE,
    OWNERSHIP,
    POLICY,
    SCHEDULER_ADAPTER,
    UI,
    Consumer,
)
from berth.contracts.workload import WorkloadKind, WorkloadSubmission


class Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Issue(Data):
    """One named problem with a submission or a request."""

    field: str = Field(
        description="Dotted path of the offending field, e.g. spec.compute.gpuDevicesRequest."
    )
    details: str = Field(description="Why it is wrong, in words.")


class WorkloadRef(Data):
    """Where a workload lives; carried by every workload event after intake."""

    workloadId: str
    name: str
    kind: WorkloadKind
    project: str
    department: str | None = None
    clusterId: str
    namespace: str
    queue: str = Field(description="Scheduler queue (KAI) of the project.")
    createdBy: str
    overQuota: bool | None = Field(
        default=None,
        description="Over the project's deserved quota at submission; unknown when unset.",
    )
    quotaReason: str | None = Field(
        default=None, description="Why the workload is over quota, in words."
    )
    quotaGpus: float | None = Field(
        default=None,
        description="The project's deserved GPUs, when it has a quota; the cluster side admits "
        "a workload that does not allow over-quota only while the project stays within it.",
    )


# --- submission ------------------------------------------------------------------------------


class SubmissionRequestedData(Data):
    """``dryRun``: intake judges the submission as it would any other (validation, project,
    template and assets, cluster, node pools, name, quota) and creates nothing: nothing is
    recorded, no *received* follows, and the answer is a ``SubmissionRejectedV1`` with
    ``dryRun: true`` naming every issue, or, when it would be received, the single issue
    ``dryRun``. Policy and the objects the cluster would get come from the dry-run query
    (``rpc.intake.submissions.dry-run.v1``)."""

    submission: WorkloadSubmission
    dryRun: bool = Field(default=False, description="Evaluate only; create nothing.")


class SubmissionRequestedV1(Event):
    """A UI or the CLI asks for a workload; subject = the workload id the client chose."""

    TYPE: ClassVar[str] = "berth.submission.requested"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (UI,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (Consumer((INTAKE,), "intake-submissions"),)
    data: SubmissionRequestedData

    @classmethod
    def refused(cls, request: Event, reason: str, *, source: str, actor: Actor) -> Event:
        submission = request.data_field("submission")
        if isinstance(submission, dict):
            name, project, kind = (submission.get(k) for k in ("name", "projectId", "kind"))
        else:
            name, project, kind = (
                getattr(submission, k, None) for k in ("name", "projectId", "kind")
            )
        return SubmissionRejectedV1(
            **request.refusal_envelope(source=source, actor=actor),
            data=SubmissionRejectedData(
                name=name if isinstance(name, str) else None,
                project=project if isinstance(project, str) else None,
                kind=kind if isinstance(kind, str) else None,
                issues=[Issue(field="authorization", details=reason)],
                dryRun=request.data_field("dryRun") is True,
            ),
        )


class UsedAsset(Data):
    """A catalog asset a submission was built from."""

    kind: str
    name: str
    assetId: str


class SubmissionReceivedData(Data):
    workload: WorkloadRef
    submission: WorkloadSubmission
    assets: list[UsedAsset] | None = Field(
        default=None, description="Catalog assets the submission was resolved from."
    )


class SubmissionReceivedV1(Event):
    """Intake validated and recorded a submission."""

    TYPE: ClassVar[str] = "berth.submission.received"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (INTAKE,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (
        Consumer((POLICY,), "policy-submissions"),
        Consumer((UI,)),
    )
    data: SubmissionReceivedData


class SubmissionRejectedData(Data):
    name: str | None = None
    project: str | None = None
    kind: str | None = None
    issues: list[Issue]
    dryRun: bool = Field(
        default=False,
        description="The answer to a dry run: nothing was created. Its only issue is dryRun "
        "when the submission would have been received.",
    )


class SubmissionRejectedV1(Event):
    """Intake refused a submission; every bad field is named."""

    TYPE: ClassVar[str] = "berth.submission.rejected"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (INTAKE,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (Consumer((UI,)),)
    data: SubmissionRejectedData


# --- policy ----------------------------------------------------------------------------------


class PolicyApprovedData(Data):
    workload: WorkloadRef
    effectiveSpec: WorkloadSubmission = Field(
        description="The submission with policy defaults filled in."
    )


class PolicyApprovedV1(Event):
    """Policy approved a workload; ``effectiveSpec`` is what will run."""

    TYPE: ClassVar[str] = "berth.policy.approved"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (POLICY,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (
        Consumer((INTAKE,), "intake-approvals"),
        # One durable per cluster: every cluster's agent sees every approval, applies its own.
        Consumer((SCHEDULER_ADAPTER, AGENT), f"scheduler-adapter-approved-{CLUSTER}"),
        Consumer((UI,)),
    )
    data: PolicyApprovedData


class PolicyRejectedData(Data):
    workload: WorkloadRef
    complianceIssues: list[Issue]


class PolicyRejectedV1(Event):
    """Policy refused a workload; every compliance issue is named."""

    TYPE: ClassVar[str] = "berth.policy.rejected"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (POLICY,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (
        Consumer((INTAKE,), "intake-rejections"),
        Consumer((UI,)),
    )
    data: PolicyRejectedData


# --- workload lifecycle ------------------------------------------------------------------------


class ObjectRef(Data):
    apiVersion: str
    kind: str
    name: str
    namespace: str | None = None


class WorkloadScheduledData(Data):
    workload: WorkloadRef
    objects: list[ObjectRef]


class WorkloadScheduledV1(Event):
    """The scheduler-adapter applied the workload's objects to its cluster."""

    TYPE: ClassVar[str] = "berth.workload.scheduled"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (SCHEDULER_ADAPTER, AGENT)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (Consumer((UI,)),)
    data: WorkloadScheduledData


class PhaseTransition(Data):
    """One phase a workload passed through, as a phase event reports it."""

    phase: Phase
    previousPhase: Phase | None = None
    time: AwareDatetime = Field(description="When the cluster's agent saw the workload in it.")
    message: str = ""
    reason: str = ""
    runningPods: int = 0
    requestedPods: int = 0


class WorkloadPhaseChangedData(Data):
    workload: WorkloadRef
    phase: Phase
    previousPhase: Phase | None = None
    message: str = ""
    reason: str = ""
    runningPods: int = 0
    requestedPods: int = 0
    history: list[PhaseTransition] = Field(
        default_factory=list,
        description="The phases the workload passed through before this one since the previous "
        "phase event, oldest first: the cluster's agent reports the transitions it saw at once "
        "in one event. Empty when the event reports a single transition.",
    )


class WorkloadPhaseChangedV1(Event):
    """Emitted only when the phase actually changes; one event may report several transitions
    (``history``), the latest of them as its own phase."""

    TYPE: ClassVar[str] = "berth.workload.phase-changed"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (SCHEDULER_ADAPTER, AGENT)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (
        Consumer((INTAKE,), "intake-phases"),
        Consumer((UI,)),
    )
    data: WorkloadPhaseChangedData

    def transitions(self) -> list[PhaseTransition]:
        """Every transition the event reports, oldest first, its own phase last."""
        data = self.data
        return [
            *data.history,
            PhaseTransition(
                phase=data.phase,
                previousPhase=data.previousPhase,
                time=self.time,
                message=data.message,
                reason=data.reason,
                runningPods=data.runningPods,
                requestedPods=data.requestedPods,
            ),
        ]


class WorkloadActionData(Data):
    action: WorkloadAction
    name: str
    project: str


class WorkloadActionRequestedV1(Event):
    """A user asks to delete, suspend or resume a workload."""

    TYPE: ClassVar[str] = "berth.workload.action-requested"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (UI,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (Consumer((OWNERSHIP,), "ownership-actions"),)
    data: WorkloadActionData

    @classmethod
    def refused(cls, request: Event, reason: str, *, source: str, actor: Actor) -> Event:
        return WorkloadActionDeniedV1(
            **request.refusal_envelope(source=source, actor=actor),
            data=WorkloadActionDeniedData(
                action=request.data_field("action"),
                name=request.data_field("name"),
                project=request.data_field("project"),
                reason=reason,
            ),
        )


class WorkloadActionAuthorizedData(WorkloadActionData):
    workload: WorkloadRef


class WorkloadActionAuthorizedV1(Event):
    """Ownership allowed the action; the scheduler-adapter carries it out."""

    TYPE: ClassVar[str] = "berth.workload.action-authorized"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (OWNERSHIP,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (
        Consumer((SCHEDULER_ADAPTER, AGENT), f"scheduler-adapter-actions-{CLUSTER}"),
        Consumer((UI,)),
    )
    data: WorkloadActionAuthorizedData


class WorkloadActionDeniedData(WorkloadActionData):
    reason: str


class WorkloadActionDeniedV1(Event):
    """Ownership refused the action, with the reason."""

    TYPE: ClassVar[str] = "berth.workload.action-denied"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (OWNERSHIP,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (Consumer((UI,)),)
    data: WorkloadActionDeniedData


# --- cluster ---------------------------------------------------------------------------------


class PublicKey(Data):
    """A public key values are sealed to (a libsodium sealed box, X25519), with its id."""

    keyId: str = Field(min_length=1, description="Names the key pair; changes when rotated.")
    publicKey: str = Field(min_length=1, description="The 32-byte X25519 public key, base64.")


class ClusterConfig(Data):
    """The cluster's public self-description, as its agent reads it from the cluster."""

    model_config = ConfigDict(frozen=True, extra="allow")

    workloadOwnershipProtection: bool = False
    knative: bool = False
    clusterVersion: str = ""
    credentialKey: PublicKey | None = Field(
        default=None,
        description="The agent's key: the catalog seals credential values to it, so only "
        "this cluster's agent can open them to create their Kubernetes Secrets.",
    )


class ClusterConfigReportedData(Data):
    clusterId: str
    backend: str = Field(description="kubernetes or simulated")
    config: ClusterConfig
    nodePools: list[str] = Field(default_factory=list)
    gpus: int = 0
    capabilities: ClusterCapabilities | None = Field(
        default=None,
        description="What the cluster runs beyond core Kubernetes; unset from older agents.",
    )


class ClusterConfigReportedV1(Event):
    """A cluster agent reports what it sees (at start and whenever it changes)."""

    TYPE: ClassVar[str] = "berth.cluster.config-reported"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (SCHEDULER_ADAPTER, AGENT)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (Consumer((CLUSTER_SYNC,), "cluster-sync-reports"),)
    data: ClusterConfigReportedData


class ClusterConfigChangedData(Data):
    clusterId: str
    config: ClusterConfig
    changed: list[str] = Field(description="Keys whose value differs from the last known config.")


class ClusterConfigChangedV1(Event):
    """cluster-sync's record of a cluster's config changed (or the cluster registered)."""

    TYPE: ClassVar[str] = "berth.cluster.config-changed"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (CLUSTER_SYNC,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (
        Consumer((OWNERSHIP,), "ownership-clusters"),
        # The catalog seals credential values to the key each cluster's agent reports.
        Consumer((CATALOG,), "catalog-cluster-keys"),
    )
    data: ClusterConfigChangedData


class ClusterSettings(Data):
    """Cluster settings an administrator may change; unset ones stay as they are."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workloadOwnershipProtection: bool | None = Field(
        default=None, description="Only a workload's creator may delete or suspend it."
    )


class ClusterConfigRequestedData(Data):
    clusterId: str
    settings: ClusterSettings


class ClusterConfigRequestedV1(Event):
    """An administrator asks for a cluster setting (desired state going out to the agent)."""

    TYPE: ClassVar[str] = "berth.cluster.config-requested"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (UI,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (
        Consumer((CLUSTER_SYNC,), "cluster-sync-config-requests"),
    )
    data: ClusterConfigRequestedData


class ClusterConfigDesiredV1(Event):
    """cluster-sync accepted a requested setting; the cluster's agent applies it, reports back."""

    TYPE: ClassVar[str] = "berth.cluster.config-desired"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (CLUSTER_SYNC,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (
        # One durable per cluster: every cluster's agent sees every desired-config event.
        Consumer((SCHEDULER_ADAPTER, AGENT), f"scheduler-adapter-config-{CLUSTER}"),
        # Ownership enforces the stricter of desired and reported protection.
        Consumer((OWNERSHIP,), "ownership-desired-configs"),
    )
    data: ClusterConfigRequestedData


class ClusterConfigRejectedData(ClusterConfigRequestedData):
    reason: str


class ClusterConfigRejectedV1(Event):
    """cluster-sync refused a requested setting (the caller may not change the cluster's
    config), with the reason; nothing is sent down."""

    TYPE: ClassVar[str] = "berth.cluster.config-rejected"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (CLUSTER_SYNC,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (Consumer((UI,)),)
    data: ClusterConfigRejectedData


class ClusterRecord(Data):
    """What cluster-sync knows of a registered cluster, from its agent's latest reports."""

    clusterId: str
    backend: str = Field(description="kubernetes or simulated")
    config: ClusterConfig
    nodePools: list[str] = Field(default_factory=list)
    gpus: int = 0
    capabilities: dict[str, Any] = Field(
        default_factory=dict, description="What the cluster can run, as its agent reports it."
    )
    extra: dict[str, Any] = Field(
        default_factory=dict,
        description="Every other field of the agent's report, kept as reported.",
    )
    reportedAt: datetime = Field(description="Time of the report this record comes from.")
    connected: bool = Field(
        default=True,
        description="False once its agent has stopped reporting (cluster-sync marks the cluster "
        "disconnected; its workloads' phase is then Unknown); true again at its next report.",
    )


class ClusterUpdatedV1(Event):
    """cluster-sync registered a cluster, or a report changed what it knows of one; services
    that need the cluster registry (intake checks a submission's clusterId) keep a copy."""

    TYPE: ClassVar[str] = "berth.cluster.updated"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (CLUSTER_SYNC,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (Consumer((INTAKE,), "intake-clusters"),)
    data: ClusterRecord


# --- catalog ---------------------------------------------------------------------------------


class AssetChangedData(Data):
    assetKind: str = Field(description="project, department, environment, compute, ...")
    assetId: str
    name: str
    change: Literal["created", "updated", "deleted"]
    scope: str = "tenant"
    asset: dict[str, Any] = Field(default_factory=dict)


class CatalogAssetChangedV1(Event):
    """An organisation unit or asset was created, updated or deleted."""

    TYPE: ClassVar[str] = "berth.catalog.asset-changed"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (CATALOG,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (
        Consumer((INTAKE,), "intake-catalog"),
        # Each cluster's agent applies again the Secrets it made of a credential that changed.
        Consumer((SCHEDULER_ADAPTER, AGENT), f"scheduler-adapter-credentials-{CLUSTER}"),
        Consumer((UI,)),
    )
    data: AssetChangedData
