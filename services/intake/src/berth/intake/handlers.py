"""Intake handlers: accept submissions, and keep the workload read model up to date."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span
from sqlalchemy import bindparam, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from berth.contracts import boundaries
from berth.contracts.catalog import AssetView, project_scopes
from berth.contracts.envelope import RawEvent
from berth.contracts.events import (
    TERMINAL_PHASES,
    Issue,
    PolicyApprovedV1,
    PolicyRejectedV1,
    SubmissionReceivedData,
    SubmissionReceivedV1,
    SubmissionRejectedData,
    SubmissionRejectedV1,
    SubmissionRequestedData,
    UsedAsset,
    WorkloadPhaseChangedV1,
    WorkloadRef,
)
from berth.contracts.queries import (
    DryRunReply,
    DryRunRequest,
    EvaluateReply,
    EvaluateRequest,
    ProjectInfo,
    RenderReply,
    RenderRequest,
)
from berth.contracts.subjects import RPC_POLICY_EVALUATE, rpc_render
from berth.contracts.workload import WorkloadSubmission
from berth.intake import clusters, projection, quota, resolution, validation
from berth.intake.catalog_client import ProjectDirectory
from berth.intake.tables import LIVE, phase_history, workloads
from berth.shared.bus import ask
from berth.shared.consumer import Incoming, Unit
from berth.shared.telemetry import trace_id_of

log = logging.getLogger(__name__)

SOURCE = "/berth/intake"
# Inlined rather than bound: executemany cannot expand an IN list per row.
NOT_TERMINAL = text(
    "(phase IS NULL OR phase NOT IN ({}))".format(
        ", ".join(f"'{p}'" for p in sorted(TERMINAL_PHASES))
    )
)


def _reject(
    unit: Unit,
    item: Incoming[RawEvent],
    issues: list[Issue],
    rows: list[dict[str, Any]],
    *,
    oversized: bool = False,
) -> None:
    # What is recorded must be storable even when the submission was not (NaN, NUL, size).
    data = (
        {"omitted": f"{len(item.msg.data)} bytes"}
        if oversized
        else boundaries.storable(item.event.data)
    )
    name, project, kind = validation.describe_raw(data)
    item.span.set_attribute("berth.outcome", "rejected")
    log.info(
        "submission %r in project %r rejected: %s",
        name,
        project,
        "; ".join(f"{i.field}: {i.details}" for i in issues)[:500],
        extra=_log_context(item),
    )
    rows.append(
        {
            "id": item.event.subject,
            "name": name,
            "project": project,
            "kind": kind,
            "cluster_id": None,
            "created_by": boundaries.storable(item.event.actor.email)[:320],
            "status": "rejected",
            "trace_id": trace_id_of(item.span),
            "submission": data,
            "issues": [boundaries.storable(i.model_dump()) for i in issues],
            "content_hash": None if oversized else validation.content_hash(item.event.data),
        }
    )
    unit.emit(
        SubmissionRejectedV1(
            source=SOURCE,
            **item.event.chain(),
            data=SubmissionRejectedData(name=name, project=project, kind=kind, issues=issues),
        ),
        cause=item,
    )


def _log_context(item: Incoming[RawEvent]) -> dict[str, str]:
    return {
        "workload_id": item.event.subject,
        "event_id": str(item.event.id),
        "trace_id": trace_id_of(item.span),
    }


async def accept_submissions(
    items: list[Incoming[RawEvent]], unit: Unit, *, directory: ProjectDirectory
) -> None:
    """Validate, resolve the project, reserve the name, record, and emit received or rejected."""
    rows: list[dict[str, Any]] = []
    valid: list[tuple[Incoming[RawEvent], SubmissionRequestedData]] = []
    for item in items:
        refused = validation.at_the_boundary(item.event.data, len(item.msg.data))
        if len(item.msg.data) > boundaries.MAX_SUBMISSION_BYTES:
            _reject(unit, item, refused, rows, oversized=True)
            continue
        parsed = validation.parse(item.event.subject, item.event.data)
        if isinstance(parsed, list) or refused:
            _reject(unit, item, refused + (parsed if isinstance(parsed, list) else []), rows)
        else:
            valid.append((item, parsed))

    projects = await directory.lookup([(d.submission.projectId, i.span) for i, d in valid])
    built = await build_from_assets(
        [(i.event.subject, i.event.data, i.span) for i, _ in valid], projects, directory
    )
    taken = await _live_names(
        unit.conn, [(d.submission.projectId, d.submission.name) for _, d in valid]
    )
    limits = await quota.quotas(unit.conn, list(projects))
    used_gpus = await quota.usage(unit.conn, list(limits))
    known = await _known_ids(unit.conn, [i.event.subject for i, _ in valid])
    pools = await projection.node_pools(unit.conn) if valid else set()
    registry = await clusters.registry(unit.conn) if valid else {}

    for item, data in valid:
        sub = data.submission
        digest = validation.content_hash(item.event.data)
        if item.event.subject in known:
            recorded = known[item.event.subject]
            if recorded is None or recorded == digest:
                continue  # the same workload submitted again (a client retry): already handled
            # Another submission under an id already taken: refused by name, never dropped.
            unit.emit(
                SubmissionRejectedV1(
                    source=SOURCE,
                    **item.event.chain(),
                    data=SubmissionRejectedData(
                        name=sub.name,
                        project=sub.projectId,
                        kind=sub.kind,
                        issues=[validation.id_reused(item.event.subject)],
                    ),
                ),
                cause=item,
            )
            item.span.set_attribute("berth.outcome", "rejected")
            continue
        known[item.event.subject] = digest
        project = projects.get(sub.projectId)
        issues = []
        used: list[UsedAsset] | None = None
        if project is None:
            issues.append(validation.unknown_project(sub.projectId))
        elif item.event.subject in built:
            outcome = built[item.event.subject]
            if isinstance(outcome, list):
                issues.extend(outcome)
            else:
                sub, used = outcome
        if project is not None and not issues:
            # Only a resolved spec can be judged against its cluster: one whose assets were
            # refused lacks what they would have given it (an image...).
            issues.extend(clusters.cluster_issues(sub, cluster_of(sub, project), registry))
        if pools:
            # Only against a catalog intake has seen: before its first catalog event it
            # cannot tell an unknown pool from one it has not heard of yet.
            issues.extend(
                validation.unknown_node_pool(field, pool)
                for field, pool in boundaries.node_pools(sub.model_dump(mode="json"))
                if pool not in pools
            )
        name = sub.name
        if sub.useGivenNameAsPrefix:
            name = _unique_name(sub.name, sub.projectId, taken)
        elif (sub.projectId, name) in taken:
            issues.append(validation.name_taken(name, sub.projectId))
        if issues or project is None:
            _reject(unit, item, issues, rows)
            continue
        taken.add((sub.projectId, name))
        if name != sub.name:
            sub = sub.model_copy(update={"name": name})
        ref = workload_ref(item.event.subject, sub, project, item.event.actor.email)
        if project.name in limits:
            requested = quota.gpus(sub.model_dump(mode="json", exclude_none=True))
            over, reason = quota.assess(
                project.name, requested, used_gpus.get(project.name, 0.0), limits[project.name]
            )
            used_gpus[project.name] = used_gpus.get(project.name, 0.0) + requested
            ref = ref.model_copy(
                update={"overQuota": over, "quotaReason": reason, "quotaGpus": limits[project.name]}
            )
            item.span.set_attribute("berth.quota.over", over)
        item.span.set_attribute("berth.outcome", "received")
        log.info(
            "submission %r in project %r received", name, ref.project, extra=_log_context(item)
        )
        item.span.set_attribute("berth.workload.name", name)
        rows.append(
            {
                "id": ref.workloadId,
                "name": name,
                "project": ref.project,
                "kind": ref.kind,
                "cluster_id": ref.clusterId,
                "created_by": ref.createdBy,
                "status": "received",
                "trace_id": trace_id_of(item.span),
                "submission": sub.model_dump(mode="json", exclude_none=True),
                "issues": [],
                "content_hash": digest,
            }
        )
        unit.emit(
            SubmissionReceivedV1(
                source=SOURCE,
                **item.event.chain(),
                data=SubmissionReceivedData(workload=ref, submission=sub, assets=used),
            ),
            cause=item,
        )
    if rows:
        await unit.conn.execute(insert(workloads).on_conflict_do_nothing(), rows)


async def build_from_assets(
    requests: list[tuple[str, dict[str, Any], Span]],
    projects: dict[str, ProjectInfo],
    directory: ProjectDirectory,
) -> dict[str, tuple[WorkloadSubmission, list[UsedAsset]] | list[Issue]]:
    """Resolve every submission that names a template or assets, by workload id; one catalog
    request per round for the whole batch (a template names more assets: a few rounds)."""
    wanting = [
        (wid, data, span)
        for wid, data, span in requests
        if resolution.names_assets(data.get("submission") or {})
        and (data.get("submission") or {}).get("projectId") in projects
    ]
    if not wanting:
        return {}
    candidates: list[AssetView] = []
    fetched: set[tuple[str, str]] = set()
    for _ in range(4):
        refs = {
            (r.kind, r.name): r
            for _, data, _ in wanting
            for r in resolution.wanted(data["submission"], candidates)
            if (r.kind, r.name) not in fetched
        }
        if not refs:
            break
        fetched.update(refs)
        candidates += await directory.assets(list(refs.values()), wanting[0][2])
    out: dict[str, tuple[WorkloadSubmission, list[UsedAsset]] | list[Issue]] = {}
    for wid, data, _ in wanting:
        project = projects[data["submission"]["projectId"]]
        result = resolution.resolve(
            data["submission"],
            project=project.name,
            scopes=project_scopes(project.name, project.department, project.clusterId),
            candidates=candidates,
        )
        if isinstance(result, list):
            out[wid] = result
            continue
        parsed = validation.parse(wid, {**data, "submission": result.submission})
        out[wid] = parsed if isinstance(parsed, list) else (parsed.submission, result.used)
    return out


def cluster_of(sub: WorkloadSubmission, project: ProjectInfo) -> str:
    """The submission's cluster, else its project's."""
    return sub.clusterId or project.clusterId


def workload_ref(
    workload_id: str, sub: WorkloadSubmission, project: ProjectInfo, creator: str
) -> WorkloadRef:
    return WorkloadRef(
        workloadId=workload_id,
        name=sub.name,
        kind=sub.kind,
        project=project.name,
        department=project.department,
        clusterId=cluster_of(sub, project),
        namespace=project.namespace,
        queue=project.queue,
        createdBy=creator,
    )


async def dry_run(
    request: DryRunRequest,
    *,
    engine: AsyncEngine,
    directory: ProjectDirectory,
    nc: Callable[[], Any],
    tracer: trace.Tracer,
    timeout: float,
) -> DryRunReply:
    """Everything a submission would go through, creating nothing: validation, the project,
    the name, policy (effective spec and issues) and the objects the cluster would get."""
    with tracer.start_as_current_span("dry run") as span:
        parsed = validation.parse("dry-run", {"submission": request.submission})
        if isinstance(parsed, list):
            return DryRunReply(issues=parsed)
        sub = parsed.submission
        project = (await directory.lookup([(sub.projectId, span)])).get(sub.projectId)
        if project is None:
            return DryRunReply(issues=[validation.unknown_project(sub.projectId)])
        built = await build_from_assets(
            [("dry-run", {"submission": request.submission}, span)],
            {project.name: project},
            directory,
        )
        if "dry-run" in built:
            outcome = built["dry-run"]
            if isinstance(outcome, list):
                return DryRunReply(issues=outcome)
            sub = outcome[0]
        async with engine.connect() as conn:
            taken = await _live_names(conn, [(sub.projectId, sub.name)])
            cluster = clusters.cluster_issues(
                sub, cluster_of(sub, project), await clusters.registry(conn)
            )
        if cluster:
            return DryRunReply(issues=cluster)
        if taken and not sub.useGivenNameAsPrefix:
            return DryRunReply(issues=[validation.name_taken(sub.name, sub.projectId)])
        ref = workload_ref("dry-run", sub, project, request.actor.email)
        evaluated = await ask(
            nc(),
            RPC_POLICY_EVALUATE,
            EvaluateRequest(workload=ref, submission=sub),
            EvaluateReply,
            timeout=timeout,
        )
        effective = evaluated.effectiveSpec.model_dump(mode="json", exclude_none=True)
        if evaluated.complianceIssues:
            return DryRunReply(issues=evaluated.complianceIssues, effectiveSpec=effective)
        rendered = await ask(
            nc(),
            rpc_render(ref.clusterId),
            RenderRequest(workload=ref, submission=evaluated.effectiveSpec),
            RenderReply,
            timeout=timeout,
        )
        issues = rendered.issues or (
            [Issue(field="spec", details=rendered.error)] if rendered.error else []
        )
        return DryRunReply(issues=issues, effectiveSpec=effective, manifests=rendered.manifests)


async def _live_names(conn: AsyncConnection, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    if not keys:
        return set()
    stmt = select(workloads.c.project, workloads.c.name).where(
        tuple_(workloads.c.project, workloads.c.name).in_(keys), LIVE
    )
    return {(r.project, r.name) for r in await conn.execute(stmt)}


async def _known_ids(conn: AsyncConnection, ids: list[str]) -> dict[str, str | None]:
    """Workload ids already recorded, with the content hash of their submission."""
    if not ids:
        return {}
    rows = await conn.execute(
        select(workloads.c.id, workloads.c.content_hash).where(workloads.c.id.in_(ids))
    )
    return {r.id: r.content_hash for r in rows}


def _unique_name(prefix: str, project: str, taken: set[tuple[str, str]]) -> str:
    while True:
        name = f"{prefix[:56]}-{secrets.token_hex(3)}"
        if (project, name) not in taken:
            return name


async def record_approvals(items: list[Incoming[PolicyApprovedV1]], unit: Unit) -> None:
    await unit.conn.execute(
        update(workloads)
        .where(workloads.c.id == bindparam("wid"), workloads.c.status == "received")
        .values(status="approved", effective_spec=bindparam("spec")),
        [
            {
                "wid": i.event.subject,
                "spec": i.event.data.effectiveSpec.model_dump(mode="json", exclude_none=True),
            }
            for i in items
        ],
    )


async def record_policy_rejections(items: list[Incoming[PolicyRejectedV1]], unit: Unit) -> None:
    await unit.conn.execute(
        update(workloads)
        .where(workloads.c.id == bindparam("wid"))
        .values(status="rejected", issues=bindparam("issues")),
        [
            {
                "wid": i.event.subject,
                "issues": [x.model_dump() for x in i.event.data.complianceIssues],
            }
            for i in items
        ],
    )


async def record_phases(items: list[Incoming[WorkloadPhaseChangedV1]], unit: Unit) -> None:
    """History keeps every phase; the current phase only moves forward in event time."""
    await unit.conn.execute(
        insert(phase_history),
        [
            {
                "workload_id": i.event.subject,
                "phase": i.event.data.phase,
                "message": i.event.data.message,
                "at": i.event.time,
            }
            for i in items
        ],
    )
    await unit.conn.execute(
        update(workloads)
        .where(
            workloads.c.id == bindparam("wid"),
            or_(workloads.c.phase_at.is_(None), workloads.c.phase_at <= bindparam("at")),
            # A terminal phase is final, whatever order late events arrive in.
            NOT_TERMINAL,
        )
        .values(
            status=bindparam("phase"),
            phase=bindparam("phase"),
            phase_message=bindparam("message"),
            phase_at=bindparam("at"),
            running_pods=bindparam("running"),
            requested_pods=bindparam("requested"),
        ),
        [
            {
                "wid": i.event.subject,
                "phase": i.event.data.phase,
                "message": i.event.data.message,
                "at": i.event.time,
                "running": i.event.data.runningPods,
                "requested": i.event.data.requestedPods,
            }
            for i in items
        ],
    )
