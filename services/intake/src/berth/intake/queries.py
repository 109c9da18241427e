"""Read side served over request-reply: one workload, or a project's workloads."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from berth.contracts.access import AccessRule, OrgTree, readable_projects, refusal
from berth.contracts.events import WorkloadRef
from berth.contracts.queries import (
    ActionTarget,
    ActionTargetsReply,
    ActionTargetsRequest,
    AssetUsersReply,
    AssetUsersRequest,
    PhaseRecord,
    ProjectInfo,
    WorkloadListReply,
    WorkloadQuery,
    WorkloadReply,
    WorkloadView,
)
from berth.intake import projection
from berth.intake.store import Reader, TargetRow
from berth.intake.tables import (
    LIVE,
    access_rules,
    clusters,
    phase_history,
    workload_assets,
    workloads,
)
from berth.shared.access import SqlAccessRules


async def _access(conn: AsyncConnection) -> tuple[list[AccessRule], OrgTree]:
    """The rules in force and the organisation tree, from intake's own copies."""
    return await SqlAccessRules(conn, access_rules).access_rules(), await projection.org_tree(conn)


# Phases after which nothing on the cluster changes the workload any more.
SETTLED = frozenset({"Completed", "Failed", "Stopped", "Deleted"})
UNKNOWN = "Unknown"


def _view(row: Any, phases: list[PhaseRecord] | None = None) -> WorkloadView:
    view = _stored_view(row, phases)
    if row.cluster_connected is False and row.phase and row.phase not in SETTLED:
        # What the cluster last said may no longer be true: shown as Run:ai does, Unknown with
        # the reason, until the agent reports again and its phases flow once more.
        since = row.cluster_reported_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        message = (
            f"cluster {row.cluster_id} is disconnected: its agent has not reported since {since} "
            f"(last known phase: {row.phase})"
        )
        return view.model_copy(
            update={"status": UNKNOWN, "phase": UNKNOWN, "phaseMessage": message}
        )
    return view


def _stored_view(row: Any, phases: list[PhaseRecord] | None = None) -> WorkloadView:
    return WorkloadView(
        workloadId=row.id,
        name=row.name or "",
        kind=row.kind or "",
        project=row.project or "",
        createdBy=row.created_by,
        status=row.status,
        phase=row.phase,
        phaseMessage=row.phase_message,
        traceId=row.trace_id,
        submittedAt=row.submitted_at,
        issues=list(row.issues or []),
        phases=phases or [],
        spec=row.spec,
        clusterId=row.cluster_id,
        runningPods=row.running_pods,
        requestedPods=row.requested_pods,
    )


async def get_workload(query: WorkloadQuery, *, engine: AsyncEngine) -> WorkloadReply:
    """By id, or by name within the project, where a workload id is accepted as well. A name
    belongs to its live workload: a rejected or deleted one of the same name (a duplicate
    submission, an earlier run) is found only when no live one exists."""
    live = case((LIVE, 0), else_=1)
    stmt = _with_cluster().order_by(live, workloads.c.submitted_at.desc()).limit(1)
    if query.workloadId:
        stmt = stmt.where(workloads.c.id == query.workloadId)
    elif query.name:
        by_name = and_(workloads.c.project == query.project, workloads.c.name == query.name)
        by_id = and_(workloads.c.id == query.name, workloads.c.project == query.project)
        stmt = stmt.where(or_(by_name, by_id))
    else:
        return WorkloadReply(error="give a workload name or id")
    async with engine.connect() as conn:
        row = (await conn.execute(stmt)).first()
        if row is None:
            what = query.workloadId or f'"{query.name}" in project "{query.project}"'
            return WorkloadReply(error=f"no workload {what}")
        rules, tree = await _access(conn)
        path = tree.path(("project", row.project or ""))
        # No actor: a service's or the operator's own query (the runtime gives every query of
        # a UI the actor its token proves, or refuses it).
        if query.actor is not None and (
            problem := refusal(query.actor, "read", "workloads", "read", path, rules)
        ):
            return WorkloadReply(error=problem)
        history = await conn.execute(
            select(phase_history.c.phase, phase_history.c.message, phase_history.c.at)
            .where(phase_history.c.workload_id == row.id)
            .order_by(phase_history.c.at, phase_history.c.id)
        )
        phases = [PhaseRecord(phase=h.phase, message=h.message, at=h.at) for h in history]
    return WorkloadReply(workload=_view(row, phases))


# The spec a view shows: the effective one once policy approved it, else the submission's.
# Chosen in SQL so that one JSON document per row is sent and decoded, not both: decoding them
# is most of what a page of the list costs.
_SHOWN_SPEC = func.coalesce(
    func.nullif(
        func.nullif(workloads.c.effective_spec, literal_column("'null'::jsonb")),
        literal_column("'{}'::jsonb"),
    ),
    workloads.c.submission,
).label("spec")
_VIEW_COLUMNS = [c for c in workloads.c if c.name not in ("submission", "effective_spec")]


def _with_cluster() -> Select[Any]:
    """Workloads with their cluster's connection, as intake's copy of the registry has it."""
    return select(
        *_VIEW_COLUMNS,
        _SHOWN_SPEC,
        clusters.c.connected.label("cluster_connected"),
        clusters.c.reported_at.label("cluster_reported_at"),
    ).select_from(workloads.outerjoin(clusters, clusters.c.cluster_id == workloads.c.cluster_id))


DEFAULT_PAGE = 500


def encode_cursor(submitted_at: datetime, workload_id: str) -> str:
    """The position of one row in the list's order (submitted_at DESC, id): its submission time
    to the microsecond with its offset, and its id. URL-safe, so a REST client can pass it on."""
    raw = f"{submitted_at.isoformat()}|{workload_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class BadCursor(ValueError):
    """A cursor this service did not give: why it cannot be read."""


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError) as e:
        raise BadCursor("not base64url-encoded text") from e
    at, sep, workload_id = raw.partition("|")
    if not sep or not workload_id:
        raise BadCursor("no workload id in it")
    try:
        submitted_at = datetime.fromisoformat(at)
    except ValueError as e:
        raise BadCursor(f"its time {at!r} is not an ISO 8601 timestamp") from e
    if submitted_at.tzinfo is None:
        raise BadCursor(f"its time {at!r} has no timezone")
    return submitted_at, workload_id


async def list_workloads(query: WorkloadQuery, *, engine: AsyncEngine) -> WorkloadListReply:
    """Newest first, filtered by project, status, kind and cluster when given, and always to
    the projects whose workloads the caller may read; one page, from an offset or after a
    cursor. A cursor's page is found through the (project, submitted_at DESC, id) index
    whatever its depth, where an offset's rows before it are all read and thrown away."""
    limit = query.limit or DEFAULT_PAGE
    offset = query.offset or 0
    stmt = _with_cluster().order_by(workloads.c.submitted_at.desc(), workloads.c.id)
    if query.after is not None:
        if offset:
            return WorkloadListReply(
                workloads=[],
                error=f"after {query.after!r} and offset {offset}: give one of them, not both",
            )
        try:
            at, last_id = decode_cursor(query.after)
        except BadCursor as e:
            return WorkloadListReply(
                workloads=[], error=f"after {query.after!r} is not a cursor of this list: {e}"
            )
        # Strictly after the cursor's row in the order submitted_at DESC, id ASC (no row-value
        # comparison: the directions differ). The bound alone is what starts the index scan at
        # the cursor; the rest only skips the rows of that very time up to its id.
        stmt = stmt.where(
            workloads.c.submitted_at <= at,
            or_(
                workloads.c.submitted_at < at,
                and_(workloads.c.submitted_at == at, workloads.c.id > last_id),
            ),
        )
    if query.project:
        stmt = stmt.where(workloads.c.project == query.project)
    if query.status:
        # Statuses are matched without case: users write "running", the read model "Running".
        wanted = [s.lower() for s in query.status]
        stmt = stmt.where(func.lower(workloads.c.status).in_(wanted))
    if query.kind:
        stmt = stmt.where(workloads.c.kind.in_(query.kind))
    if query.clusterId:
        stmt = stmt.where(workloads.c.cluster_id == query.clusterId)
    # One row more than the page tells whether another page follows.
    stmt = stmt.limit(limit + 1).offset(offset)
    async with engine.connect() as conn:
        readable = None
        if query.actor is not None:  # else a service's or the operator's own query
            rules, tree = await _access(conn)
            readable = readable_projects(query.actor, "workloads", rules, tree)
        if readable is not None:
            stmt = stmt.where(workloads.c.project.in_(sorted(readable)))
        rows = (await conn.execute(stmt)).all()
    page = rows[:limit]
    if len(rows) <= limit:
        return WorkloadListReply(workloads=[_view(r) for r in page])
    return WorkloadListReply(
        workloads=[_view(r) for r in page],
        # A page after a cursor does not know how many rows precede it.
        nextOffset=None if query.after is not None else offset + limit,
        nextCursor=encode_cursor(page[-1].submitted_at, page[-1].id),
    )


async def workloads_using_assets(
    request: AssetUsersRequest, *, engine: AsyncEngine
) -> AssetUsersReply:
    """The live workloads (neither rejected nor deleted) built from each asset, as
    ``project/name``: what keeps the catalog from deleting it."""
    stmt = (
        select(workload_assets.c.asset_id, workloads.c.project, workloads.c.name)
        .select_from(
            workload_assets.join(workloads, workloads.c.id == workload_assets.c.workload_id)
        )
        .where(workload_assets.c.asset_id.in_(sorted(set(request.assetIds))), LIVE)
        .order_by(workload_assets.c.asset_id, workloads.c.project, workloads.c.name)
    )
    users: dict[str, list[str]] = {}
    async with engine.connect() as conn:
        for row in await conn.execute(stmt):
            users.setdefault(row.asset_id, []).append(f"{row.project}/{row.name}")
    return AssetUsersReply(users=users)


async def action_targets(request: ActionTargetsRequest, *, read: Reader) -> ActionTargetsReply:
    """The workloads some action requests name, each with its reference as accepted and its
    current phase as its cluster last reported it (not Unknown while the cluster is
    disconnected: what an action may do depends on what the workload was last doing)."""
    names = {(n.project, n.name) for n in request.names}
    async with read() as db:
        rows = await db.action_targets(request.workloadIds, sorted(names))
        # Workloads received before intake kept each one's reference: rebuilt from its project.
        older = {r.project for r in rows if r.ref is None}
        projects = await db.projects(sorted(older)) if older else {}
    targets = {r.workload_id: t for r in rows if (t := _target(r, projects)) is not None}
    asked = set(request.workloadIds)
    by_name: dict[tuple[str, str], ActionTarget] = {}
    # Rows come live first, then latest first: the first of a name is the one it stands for.
    for row in rows:
        if (row.project, row.name) in names and row.workload_id in targets:
            by_name.setdefault((row.project, row.name), targets[row.workload_id])
    return ActionTargetsReply(
        byId={wid: t for wid, t in targets.items() if wid in asked},
        byName=list(by_name.values()),
    )


def _target(row: TargetRow, projects: dict[str, ProjectInfo]) -> ActionTarget | None:
    if row.ref is not None:
        ref = WorkloadRef.model_validate(row.ref)
    elif (project := projects.get(row.project)) is not None:
        ref = WorkloadRef.model_validate(
            {
                "workloadId": row.workload_id,
                "name": row.name,
                "kind": row.kind,
                "project": row.project,
                "department": project.department,
                "clusterId": row.cluster_id,
                "namespace": project.namespace,
                "queue": project.queue,
                "createdBy": row.created_by,
            }
        )
    else:
        return None  # neither its reference nor its project is known here any more
    return ActionTarget(workload=ref, phase=row.phase)
