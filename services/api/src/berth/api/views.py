"""berth's read model in Run:ai's response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from berth.contracts.queries import PodInfo, ProjectInfo, WorkloadView
from berth.contracts.workload import WORKLOAD_KINDS

# Run:ai's collection names of the kinds, as in /api/v1/workloads/<collection>.
COLLECTIONS: dict[str, str] = {
    "workspace": "workspaces",
    "training": "trainings",
    "distributed": "distributed",
    "inference": "inferences",
}
if set(COLLECTIONS) != set(WORKLOAD_KINDS):
    raise TypeError(f"COLLECTIONS {sorted(COLLECTIONS)} differs from the kinds {WORKLOAD_KINDS}")

# berth's statuses before a phase, as Run:ai's phases.
_PHASE_OF_STATUS = {"received": "Creating", "approved": "Creating", "rejected": "Failed"}
# Run:ai has no Deleted phase: a deleted workload is Deleting with its deletedAt set.
_RUNAI_PHASE = {"Deleted": "Deleting"}
_DESIRED = {
    "Stopped": "Stopped",
    "Stopping": "Stopped",
    "Deleting": "Deleted",
    "Deleted": "Deleted",
}


def runai_type(kind: str) -> str:
    return kind.capitalize()


def phase_of(view: WorkloadView) -> str:
    phase = view.phase or _PHASE_OF_STATUS.get(view.status, view.status)
    return _RUNAI_PHASE.get(phase, phase)


def updated_at(view: WorkloadView) -> datetime:
    return view.phases[-1].at if view.phases else view.submittedAt


class WorkloadCreated(BaseModel):
    """Run:ai's answer to a creation (``WorkloadMeta`` and the kind's spec): the workload as
    policy approved it, with every default filled in."""

    name: str
    requestedName: str
    workloadId: str
    projectId: str
    departmentId: str | None = None
    clusterId: str
    createdBy: str
    createdAt: datetime
    desiredPhase: Literal["Running", "Stopped", "Deleted"] = "Running"
    actualPhase: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)


class RunaiWorkload(BaseModel):
    """Run:ai's unified read model ``Workload``, with what berth knows of it."""

    type: str
    name: str
    id: str
    source: str = "Control-plane"
    priorityClassName: str
    clusterId: str
    projectName: str
    projectId: str
    departmentName: str
    departmentId: str
    namespace: str
    createdAt: datetime
    submittedBy: str
    phase: str
    phaseMessage: str
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    k8sPhase: str
    tenantId: int = 1
    runningPods: int
    requestedPods: dict[str, int | None] = Field(default_factory=dict)
    phaseUpdatedAt: datetime
    k8sPhaseUpdatedAt: datetime
    updatedAt: datetime
    deletedAt: datetime | None
    completedAt: datetime | None = None
    actionsSupport: dict[str, bool] = Field(default_factory=dict)
    traceId: str | None = Field(default=None, description="berth: the workload's trace.")


class WorkloadList(BaseModel):
    workloads: list[RunaiWorkload]
    next: int | None = Field(default=None, description="Offset of the next page, if any.")


class RunaiEvent(BaseModel):
    """Run:ai's ``Event``: here, each phase change the cluster side reported."""

    createdAt: datetime
    id: str | None = None
    type: str = "Normal"
    clusterId: str
    message: str
    reason: str | None = None
    source: str = "berth"


class EventList(BaseModel):
    events: list[RunaiEvent]
    next: int | None = None


class HistoryList(BaseModel):
    """Run:ai's history: here, each phase change as a ``PhaseUpdate`` record."""

    records: list[dict[str, Any]]
    next: int | None = None


def history(view: WorkloadView) -> HistoryList:
    return HistoryList(
        records=[
            {
                "meta": {"creationTimestamp": p.at.isoformat(), "type": "PhaseUpdate"},
                "spec": {
                    "phaseUpdate": {
                        "phase": _RUNAI_PHASE.get(p.phase, p.phase),
                        "phaseMessage": p.message,
                    }
                },
            }
            for p in view.phases
        ]
    )


def workload(
    view: WorkloadView, project: ProjectInfo | None, actions: dict[str, bool]
) -> RunaiWorkload:
    # The read model keeps the whole submission as policy approved it (or as submitted).
    spec = (view.spec or {}).get("spec") or {}
    phase = phase_of(view)
    changed = updated_at(view)
    deleted = next((p.at for p in view.phases if p.phase == "Deleted"), None)
    completed = next((p.at for p in view.phases if p.phase in ("Completed", "Failed")), None)
    department = (project.department if project else None) or ""
    return RunaiWorkload(
        type=runai_type(view.kind),
        name=view.name,
        id=view.workloadId,
        priorityClassName=str(spec.get("priorityClass") or ""),
        clusterId=view.clusterId or (project.clusterId if project else ""),
        projectName=view.project,
        projectId=view.project,
        departmentName=department,
        departmentId=department,
        namespace=project.namespace if project else "",
        createdAt=view.submittedAt,
        submittedBy=view.createdBy,
        phase=phase,
        phaseMessage=view.phaseMessage
        or "; ".join(f"{i.get('field')}: {i.get('details')}" for i in view.issues),
        k8sPhase=view.phase or view.status,
        runningPods=view.runningPods or 0,
        requestedPods={"number": view.requestedPods},
        phaseUpdatedAt=changed,
        k8sPhaseUpdatedAt=changed,
        updatedAt=changed,
        deletedAt=deleted,
        completedAt=completed,
        actionsSupport=actions,
        traceId=view.traceId,
    )


def created(view: WorkloadView, requested: str | None = None) -> WorkloadCreated:
    return WorkloadCreated(
        name=view.name,
        requestedName=requested or view.name,
        workloadId=view.workloadId,
        projectId=view.project,
        clusterId=view.clusterId or "",
        createdBy=view.createdBy,
        createdAt=view.submittedAt,
        desiredPhase=_DESIRED.get(view.phase or "", "Running"),  # type: ignore[arg-type]
        actualPhase=phase_of(view),
        spec=(view.spec or {}).get("spec") or {},
    )


def events(view: WorkloadView) -> list[RunaiEvent]:
    return [
        RunaiEvent(
            createdAt=p.at,
            clusterId=view.clusterId or "",
            message=p.message or p.phase,
            reason=p.phase,
            type="Warning" if p.phase == "Failed" else "Normal",
        )
        for p in view.phases
    ]


class RunaiPod(BaseModel):
    """Run:ai's ``Pod``, from what the workload's cluster reports of it now. berth adds the
    scheduler's or kubelet's ``reason`` and ``message`` while it waits or fails."""

    name: str
    id: str = Field(description="The pod's name (berth does not read its uid).")
    workloadId: str
    workloadName: str
    projectId: str
    projectName: str
    clusterId: str
    priorityClassName: str
    nodeName: str | None
    currentNodePool: str | None
    requestedNodePools: list[str] = Field(default_factory=list)
    createdAt: datetime = Field(description="The workload's submission time.")
    containers: list[dict[str, Any]] = Field(default_factory=list)
    allocatedResources: dict[str, Any] | None = None
    k8sPhase: str
    tenantId: int = 1
    k8sPhaseUpdatedAt: datetime
    updatedAt: datetime
    ready: bool = False
    restarts: int = 0
    reason: str = ""
    message: str = ""


class PodList(BaseModel):
    pods: list[RunaiPod]
    next: int | None = None


def pod(view: WorkloadView, info: PodInfo) -> RunaiPod:
    spec = (view.spec or {}).get("spec") or {}
    changed = updated_at(view)
    try:
        gpus: float | None = float(info.gpus) if info.gpus else None
    except ValueError:
        gpus = None
    return RunaiPod(
        name=info.name,
        id=info.name,
        workloadId=view.workloadId,
        workloadName=view.name,
        projectId=view.project,
        projectName=view.project,
        clusterId=view.clusterId or "",
        priorityClassName=str(spec.get("priorityClass") or ""),
        nodeName=info.node,
        currentNodePool=info.nodePool,
        requestedNodePools=list(spec.get("nodePools") or []),
        createdAt=view.submittedAt,
        allocatedResources={"gpu": gpus} if gpus is not None and info.node else None,
        k8sPhase=info.phase,
        k8sPhaseUpdatedAt=changed,
        updatedAt=changed,
        ready=info.ready,
        restarts=info.restarts,
        reason=info.reason,
        message=info.message,
    )
