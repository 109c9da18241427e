"""Request-reply (core NATS) query shapes: reads, never persisted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from berth.contracts.envelope import Actor
from berth.contracts.events import ClusterRecord, Issue, WorkloadRef
from berth.contracts.workload import WorkloadSubmission


class Query(BaseModel):
    """Base of every request and reply model of the request-reply (core NATS) subjects."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class ProjectLookupItem(Query):
    project: str
    traceparent: str | None = Field(
        default=None, description="Trace of the workload asking, so the lookup joins its trace."
    )


class ProjectLookupRequest(Query):
    items: list[ProjectLookupItem]


class ProjectInfo(Query):
    name: str
    department: str | None
    clusterId: str
    namespace: str
    queue: str
    defaultNodePools: list[str] = Field(default_factory=list)


class ProjectLookupReply(Query):
    projects: dict[str, ProjectInfo]


class WorkloadQuery(Query):
    """One workload (by name in a project, or by id), or a filtered page of workloads."""

    project: str | None = Field(
        default=None, description="The project; a list without one spans every project."
    )
    name: str | None = None
    workloadId: str | None = None
    status: list[str] | None = Field(
        default=None, description="List only workloads in one of these statuses or phases."
    )
    kind: list[str] | None = Field(
        default=None, description="List only these kinds (workspace, training, ...)."
    )
    clusterId: str | None = Field(default=None, description="List only this cluster's.")
    limit: int | None = Field(
        default=None, ge=1, le=1000, description="Page size (newest first); 500 when unset."
    )
    offset: int | None = Field(default=None, ge=0, description="Rows to skip, for paging.")
    after: str | None = Field(
        default=None,
        description="Opaque cursor from a previous reply's nextCursor: the page starts right "
        "after the last workload of that reply, in the same order, however many rows precede "
        "it. Not combined with a non-zero offset (refused).",
    )
    actor: Actor | None = Field(
        default=None,
        description="The caller, set from its verified token: a list shows only the projects "
        "it may read; describing a workload it may not read is refused; none is refused.",
    )


class PhaseRecord(Query):
    phase: str
    message: str = ""
    at: datetime


class WorkloadView(Query):
    workloadId: str
    name: str
    kind: str
    project: str
    createdBy: str
    status: str = Field(description="received, approved, rejected, or the current phase")
    phase: str | None = None
    phaseMessage: str = ""
    traceId: str | None = None
    submittedAt: datetime
    issues: list[dict[str, str]] = Field(default_factory=list)
    phases: list[PhaseRecord] = Field(default_factory=list)
    spec: dict[str, Any] | None = None
    # Published before anything filled it; kept (a published field is not removed) and reserved.
    manifests: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Reserved; always empty. Intake does not hold the objects the cluster "
        "side rendered (workload.scheduled carries only their references): the dry-run query "
        "(DryRunReply.manifests) answers what a submission becomes.",
    )
    clusterId: str | None = None
    runningPods: int | None = Field(default=None, description="Pods running at the last phase.")
    requestedPods: int | None = Field(default=None, description="Pods the workload asks for.")


class WorkloadReply(Query):
    workload: WorkloadView | None = None
    error: str | None = None


class WorkloadListReply(Query):
    workloads: list[WorkloadView]
    nextOffset: int | None = Field(
        default=None, description="Offset of the next page; unset on the last page."
    )
    nextCursor: str | None = Field(
        default=None,
        description="Cursor of the next page, for the query's after; unset on the last page. "
        "A page read after a cursor gives only this one, not nextOffset.",
    )
    error: str | None = Field(default=None, description="Why nothing could be listed.")


class AssetUsersRequest(Query):
    """Which workloads use these catalog assets (asked by the catalog before it deletes one)."""

    assetIds: list[str] = Field(min_length=1, max_length=1000)


class AssetUsersReply(Query):
    users: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per asset id that any live workload (received, neither rejected nor "
        "deleted) was resolved from: those workloads as project/name, sorted. An asset no "
        "workload uses is absent.",
    )


class WorkloadName(Query):
    project: str
    name: str


class ActionTargetsRequest(Query):
    """The workloads some action requests name (asked by ownership when it authorizes them):
    by id, and by project and name for requests from someone who may not read the workload
    (who cannot know its id)."""

    # At most one consumer batch's worth (a service's batch_size is at most 5000).
    workloadIds: list[str] = Field(default_factory=list, max_length=5000)
    names: list[WorkloadName] = Field(default_factory=list, max_length=5000)


class ActionTarget(Query):
    workload: WorkloadRef = Field(
        description="The workload as intake accepted it (its creator, project and cluster)."
    )
    phase: str | None = Field(
        default=None,
        description="Its latest phase as its cluster reported it; unset while it is being created.",
    )


class ActionTargetsReply(Query):
    byId: dict[str, ActionTarget] = Field(
        default_factory=dict,
        description="Per asked id of a workload intake received (a submission intake rejected "
        "was never a workload): that workload. An unknown id is absent.",
    )
    byName: list[ActionTarget] = Field(
        default_factory=list,
        description="Per asked project and name, the workload the name stands for: the live "
        "one, else the latest submitted. A name no workload ever had is absent.",
    )


class HealthQuery(Query):
    pass


class HealthReply(Query):
    service: str
    status: str = Field(default="ok", description="ok, or degraded (see problems)")
    outboxPending: int = 0
    outboxOldestSeconds: float | None = Field(
        default=None, description="How long the oldest unpublished event has waited."
    )
    deadLetters: int | None = Field(
        default=None, description="Messages and events of this service set aside, with reasons."
    )
    lastDeadLetterAt: datetime | None = None
    problems: list[str] = Field(default_factory=list, description="Why it is degraded.")


class RpcError(Query):
    code: str = Field(
        description="bad-request, unavailable, internal, or unauthenticated (the request's "
        "bearer token is missing or does not verify; the message says why)"
    )
    message: str
    issues: list[Issue] = Field(default_factory=list)


class ErrorReply(Query):
    """What any request-reply subject answers when it cannot answer the request itself."""

    error: RpcError

    @classmethod
    def of(cls, code: str, message: str, issues: list[Issue] | None = None) -> ErrorReply:
        return cls(error=RpcError(code=code, message=message, issues=issues or []))


class DryRunRequest(Query):
    """A submission to evaluate without creating anything (``berth submit --dry-run``)."""

    actor: Actor
    submission: dict[str, Any]


class DryRunReply(Query):
    issues: list[Issue] = Field(default_factory=list)
    effectiveSpec: dict[str, Any] | None = None
    manifests: list[dict[str, Any]] = Field(default_factory=list)


class EvaluateRequest(Query):
    workload: WorkloadRef
    submission: WorkloadSubmission


class EvaluateReply(Query):
    effectiveSpec: WorkloadSubmission
    complianceIssues: list[Issue] = Field(default_factory=list)


class RenderRequest(Query):
    workload: WorkloadRef
    submission: WorkloadSubmission


class RenderReply(Query):
    manifests: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    issues: list[Issue] | None = Field(
        default=None, description="Why the cluster cannot run the workload as intended."
    )


class PodsQuery(Query):
    """The pods of one workload, as its cluster reports them now."""

    workloadId: str


class PodInfo(Query):
    name: str
    phase: str = Field(description="Kubernetes pod phase: Pending, Running, Succeeded, Failed.")
    node: str | None = None
    nodePool: str | None = Field(default=None, description="The node's node-pool label.")
    gpus: str = Field(default="", description="GPUs it asked for: 2, 0.5 (a fraction), ...")
    ready: bool = False
    reason: str = Field(
        default="", description="Why it is not running: the scheduler's or the kubelet's reason."
    )
    message: str = ""
    restarts: int = 0


class PodsReply(Query):
    pods: list[PodInfo] = Field(default_factory=list)
    error: str | None = None


class LogsQuery(Query):
    """Container log lines of one of a workload's pods, in chunks: ``offset`` is the number of
    lines already read (the previous reply's ``offset``), so a follower asks again with it."""

    workloadId: str
    pod: str | None = Field(default=None, description="Its first pod when not given.")
    container: str | None = None
    tail: int | None = Field(default=None, ge=0, description="Only the last N lines, at first.")
    offset: int = Field(default=0, ge=0)


class LogsReply(Query):
    pod: str = ""
    pods: list[str] = Field(default_factory=list, description="Every pod of the workload.")
    lines: list[str] = Field(default_factory=list)
    offset: int = Field(default=0, description="Lines read so far: the next query's offset.")
    finished: bool = Field(
        default=False, description="The container has ended (or is gone): no more lines will come."
    )
    error: str | None = None


class NodesQuery(Query):
    """A cluster's nodes, with the GPUs berth's workloads use on each."""


class NodeInfo(Query):
    name: str
    nodePool: str
    ready: bool = True
    gpus: int = Field(default=0, description="Allocatable GPU devices.")
    gpusUsed: float = Field(
        default=0.0, description="GPUs held by berth's pods on the node (fractions count in part)."
    )


class NodesReply(Query):
    nodes: list[NodeInfo] = Field(default_factory=list)
    error: str | None = None


class ClusterQuery(Query):
    """The registered clusters (one, with clusterId), as cluster-sync last heard of them."""

    clusterId: str | None = None


class ClusterInfo(Query):
    clusterId: str
    backend: str
    config: dict[str, Any] = Field(description="The config its agent last reported.")
    desired: dict[str, Any] = Field(
        default_factory=dict, description="Settings requested and sent down to its agent."
    )
    nodePools: list[Any] = Field(default_factory=list)
    gpus: int = 0
    capabilities: dict[str, Any] = Field(
        default_factory=dict, description="What its agent reported the cluster can run."
    )
    lastReportAt: datetime | None = None
    connected: bool = Field(default=True, description="False once its agent stopped reporting.")


class ClusterReply(Query):
    clusters: list[ClusterInfo] = Field(default_factory=list)


class ClusterListQuery(Query):
    pass


class ClusterListReply(Query):
    clusters: list[ClusterRecord] = Field(default_factory=list)
