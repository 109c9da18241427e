"""Intake handlers: accept submissions (one pipeline decides, for real and for a dry run), and
keep the workload read model and intake's copies of the catalog and cluster registry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span
from pydantic import ValidationError

from berth.contracts import boundaries
from berth.contracts.access import KIND_RESOURCE, AccessRule, project_path, refusal
from berth.contracts.catalog import AssetView, project_scopes
from berth.contracts.envelope import Actor, RawEvent
from berth.contracts.events import (
    CatalogAssetChangedV1,
    ClusterUpdatedV1,
    Issue,
    PolicyApprovedV1,
    PolicyRejectedV1,
    SubmissionReceivedData,
    SubmissionReceivedV1,
    SubmissionRejectedData,
    SubmissionRejectedV1,
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
from berth.intake import clusters, quota, resolution, validation
from berth.intake.catalog_client import ProjectDirectory
from berth.intake.store import (
    CatalogEntry,
    IntakeStore,
    PhaseChange,
    Reader,
    SqlIntakeStore,
    WorkloadRow,
)
from berth.shared.bus import ask
from berth.shared.consumer import Emitter, Incoming
from berth.shared.telemetry import trace_id_of

log = logging.getLogger(__name__)

SOURCE = "/berth/intake"


StoreOf = Callable[[Emitter], IntakeStore]
"""Intake's store inside a unit of work's transaction."""


# --- the pipeline ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A submission that validated, as the pipeline judges it."""

    workload_id: str | None  # None: a dry-run query, which names no workload
    data: dict[str, Any]  # the event data as it came (its hash; the assets it names)
    submission: WorkloadSubmission
    actor: Actor
    span: Span
    dry_run: bool = False

    @property
    def creator(self) -> str:
        return self.actor.email

    @cached_property
    def digest(self) -> str:
        """The content hash of the submission as it came (judged, then recorded)."""
        return validation.content_hash(self.data)


@dataclass(frozen=True)
class Accepted:
    """What would be received: the workload (quota marks included) and its complete spec."""

    ref: WorkloadRef
    submission: WorkloadSubmission
    assets: list[UsedAsset] | None


@dataclass(frozen=True)
class Refused:
    issues: list[Issue]
    # False when another submission holds the workload id: nothing of this one can be stored.
    recordable: bool = True


# None: the same submission again (a client retry), already handled.
Verdict = Accepted | Refused | None


def forbidden(
    candidate: Candidate, project: ProjectInfo, rules: Sequence[AccessRule]
) -> Issue | None:
    """Whether an access rule lets the submitter create this kind of workload in the project."""
    problem = refusal(
        candidate.actor,
        "submit",
        KIND_RESOURCE[candidate.submission.kind],
        "create",
        project_path(project.name, project.department, project.clusterId),
        rules,
    )
    return Issue(field="actor", details=problem) if problem else None


async def decide(
    candidates: Sequence[Candidate],
    db: IntakeStore,
    directory: ProjectDirectory,
) -> list[Verdict]:
    """Judge a batch of submissions in order: the project and whether the submitter may
    submit there (a refusal says nothing more about the submission), any template and assets,
    the cluster, node pools, the name within the project, quota. A dry run is judged like the
    others but reserves neither its name nor its GPUs for the rest of the batch."""
    if not candidates:
        return []
    # The catalog's answer is awaited while the reads that do not depend on it (the access rules
    # among them) make their round trip, rather than one after the other (the fallback reads on
    # its own connection).
    lookup = asyncio.ensure_future(
        directory.lookup([(c.submission.projectId, c.span) for c in candidates])
    )
    try:
        judging = await db.judging(
            [(c.submission.projectId, c.submission.name) for c in candidates],
            [c.workload_id for c in candidates if c.workload_id is not None],
            [c.submission.projectId for c in candidates],
        )
        projects = await lookup
    except BaseException:
        # A read failed: the batch fails with it, whatever the catalog answers.
        lookup.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await lookup
        raise
    # Keyed by position: a dry-run query names no workload id.
    built = await build_from_assets(
        [(str(n), c.data, c.span) for n, c in enumerate(candidates)], projects, directory
    )
    taken, known, pools, registry = judging.taken, judging.known, judging.pools, judging.registry
    # Quotas were read for the projects the submissions name: those the catalog knows count.
    limits = {name: gpus for name, gpus in judging.quotas.items() if name in projects}
    used_gpus = await db.usage(list(limits))

    verdicts: list[Verdict] = []
    for n, c in enumerate(candidates):
        sub = c.submission
        digest = c.digest
        if c.workload_id is not None and c.workload_id in known:
            recorded = known[c.workload_id]
            if recorded is None or recorded == digest:
                verdicts.append(None)
            else:
                # Another submission under an id already taken: refused by name, never dropped.
                verdicts.append(Refused([validation.id_reused(c.workload_id)], recordable=False))
            continue
        if c.workload_id is not None and not c.dry_run:
            known[c.workload_id] = digest
        project = projects.get(sub.projectId)
        if project is not None and (denied := forbidden(c, project, judging.rules)):
            verdicts.append(Refused([denied]))
            continue
        issues: list[Issue] = []
        used: list[UsedAsset] | None = None
        outcome = built.get(str(n))
        if project is None:
            issues.append(validation.unknown_project(sub.projectId))
        elif isinstance(outcome, list):
            issues.extend(outcome)
        elif outcome is not None:
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
                for field, pool in validation.named_node_pools(sub)
                if pool not in pools
            )
        name = sub.name
        if sub.useGivenNameAsPrefix:
            name = _unique_name(sub.name, sub.projectId, taken)
        elif (sub.projectId, name) in taken:
            issues.append(validation.name_taken(name, sub.projectId))
        if issues or project is None:
            verdicts.append(Refused(issues))
            continue
        if not c.dry_run:
            taken.add((sub.projectId, name))
        if name != sub.name:
            sub = sub.model_copy(update={"name": name})
        ref = workload_ref(c.workload_id or "dry-run", sub, project, c.creator)
        if project.name in limits:
            requested = quota.gpus(sub.model_dump(mode="json", exclude_none=True))
            over, reason = quota.assess(
                project.name, requested, used_gpus.get(project.name, 0.0), limits[project.name]
            )
            if not c.dry_run:
                used_gpus[project.name] = used_gpus.get(project.name, 0.0) + requested
            ref = ref.model_copy(
                update={"overQuota": over, "quotaReason": reason, "quotaGpus": limits[project.name]}
            )
            c.span.set_attribute("berth.quota.over", over)
        verdicts.append(Accepted(ref, sub, used))
    return verdicts


# --- submissions -----------------------------------------------------------------------------


def _log_context(item: Incoming[RawEvent]) -> dict[str, str]:
    return {
        "workload_id": item.event.subject,
        "event_id": str(item.event.id),
        "trace_id": trace_id_of(item.span),
    }


def _is_dry_run(data: dict[str, Any]) -> bool:
    # Read from the data as it came, so that a dry run that does not validate is not recorded.
    return data.get("dryRun") is True


def _reject(
    unit: Emitter,
    item: Incoming[RawEvent],
    issues: list[Issue],
    rows: list[WorkloadRow],
    *,
    oversized: bool = False,
    recordable: bool = True,
) -> None:
    # What is recorded must be storable even when the submission was not (NaN, NUL, size).
    data = (
        {"omitted": f"{len(item.msg.data)} bytes"}
        if oversized
        else boundaries.storable(item.event.data)
    )
    name, project, kind = validation.describe_raw(data)
    dry_run = not oversized and _is_dry_run(item.event.data)
    item.span.set_attribute("berth.outcome", "dry run" if dry_run else "rejected")
    log.info(
        "%s %r in project %r rejected: %s",
        "dry run" if dry_run else "submission",
        name,
        project,
        "; ".join(f"{i.field}: {i.details}" for i in issues)[:500],
        extra=_log_context(item),
    )
    if recordable and not dry_run:
        rows.append(
            WorkloadRow(
                id=item.event.subject,
                name=name,
                project=project,
                kind=kind,
                cluster_id=None,
                created_by=boundaries.storable(item.event.actor.email)[:320],
                status="rejected",
                trace_id=trace_id_of(item.span),
                submission=data,
                issues=[boundaries.storable(i.model_dump()) for i in issues],
                content_hash=None if oversized else validation.content_hash(item.event.data),
            )
        )
    unit.emit(
        SubmissionRejectedV1(
            source=SOURCE,
            **item.event.chain(),
            data=SubmissionRejectedData(
                name=name, project=project, kind=kind, issues=issues, dryRun=dry_run
            ),
        ),
        cause=item,
    )


async def accept_submissions(
    items: list[Incoming[RawEvent]],
    unit: Emitter,
    *,
    directory: ProjectDirectory,
    store: StoreOf = SqlIntakeStore.of,
) -> None:
    """Validate, judge (``decide``), record, and emit received or rejected. A dry run is judged
    the same way and records nothing: it gets a rejection saying what is wrong, or that it
    would be received (``SubmissionRejectedData.dryRun``)."""
    db = store(unit)
    rows: list[WorkloadRow] = []
    valid: list[tuple[Incoming[RawEvent], Candidate]] = []
    for item in items:
        refused = validation.at_the_boundary(item.event.data, len(item.msg.data))
        if len(item.msg.data) > boundaries.MAX_SUBMISSION_BYTES:
            _reject(unit, item, refused, rows, oversized=True)
            continue
        parsed = validation.parse(item.event.subject, item.event.data)
        if isinstance(parsed, list) or refused:
            _reject(unit, item, refused + (parsed if isinstance(parsed, list) else []), rows)
            continue
        candidate = Candidate(
            workload_id=item.event.subject,
            data=item.event.data,
            submission=parsed.submission,
            actor=item.event.actor,
            span=item.span,
            dry_run=parsed.dryRun,
        )
        valid.append((item, candidate))

    verdicts = await decide([c for _, c in valid], db, directory)
    for (item, candidate), verdict in zip(valid, verdicts, strict=True):
        if verdict is None:
            continue  # the same workload submitted again (a client retry): already handled
        if isinstance(verdict, Refused):
            _reject(unit, item, verdict.issues, rows, recordable=verdict.recordable)
            continue
        if candidate.dry_run:
            _reject(unit, item, [validation.dry_run_passed()], rows)
            continue
        _receive(unit, item, verdict, rows, candidate.digest)
    await db.record_workloads(rows)


def _receive(
    unit: Emitter,
    item: Incoming[RawEvent],
    accepted: Accepted,
    rows: list[WorkloadRow],
    content_hash: str,
) -> None:
    ref, sub = accepted.ref, accepted.submission
    item.span.set_attribute("berth.outcome", "received")
    log.info(
        "submission %r in project %r received", ref.name, ref.project, extra=_log_context(item)
    )
    item.span.set_attribute("berth.workload.name", ref.name)
    rows.append(
        WorkloadRow(
            id=ref.workloadId,
            name=ref.name,
            project=ref.project,
            kind=ref.kind,
            cluster_id=ref.clusterId,
            created_by=ref.createdBy,
            status="received",
            trace_id=trace_id_of(item.span),
            submission=sub.model_dump(mode="json", exclude_none=True),
            issues=[],
            content_hash=content_hash,
            assets=tuple(used.assetId for used in accepted.assets or ()),
            ref=ref.model_dump(mode="json"),
        )
    )
    unit.emit(
        SubmissionReceivedV1(
            source=SOURCE,
            **item.event.chain(),
            data=SubmissionReceivedData(workload=ref, submission=sub, assets=accepted.assets),
        ),
        cause=item,
    )


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
    reader: Reader,
    directory: ProjectDirectory,
    nc: Callable[[], Any],
    tracer: trace.Tracer,
    timeout: float,
) -> DryRunReply:
    """Everything a submission would go through, creating nothing: the same pipeline as
    ``accept_submissions`` (quota included), then policy (effective spec and issues) and the
    objects the cluster would get."""
    with tracer.start_as_current_span("dry run") as span:
        data = {"submission": request.submission}
        parsed = validation.parse("dry-run", data)
        if isinstance(parsed, list):
            return DryRunReply(issues=parsed)
        candidate = Candidate(
            workload_id=None,
            data=data,
            submission=parsed.submission,
            actor=request.actor,
            span=span,
            dry_run=True,
        )
        async with reader() as db:
            (verdict,) = await decide([candidate], db, directory)
        if not isinstance(verdict, Accepted):
            return DryRunReply(issues=verdict.issues if verdict else [])
        ref, sub = verdict.ref, verdict.submission
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


def _unique_name(prefix: str, project: str, taken: set[tuple[str, str]]) -> str:
    while True:
        name = f"{prefix[:56]}-{secrets.token_hex(3)}"
        if (project, name) not in taken:
            return name


# --- the read model and intake's copies ------------------------------------------------------


async def record_approvals(
    items: list[Incoming[PolicyApprovedV1]], unit: Emitter, *, store: StoreOf = SqlIntakeStore.of
) -> None:
    await store(unit).approve(
        [
            (i.event.subject, i.event.data.effectiveSpec.model_dump(mode="json", exclude_none=True))
            for i in items
        ]
    )


async def record_policy_rejections(
    items: list[Incoming[PolicyRejectedV1]], unit: Emitter, *, store: StoreOf = SqlIntakeStore.of
) -> None:
    await store(unit).reject(
        [(i.event.subject, [x.model_dump() for x in i.event.data.complianceIssues]) for i in items]
    )


async def record_phases(
    items: list[Incoming[WorkloadPhaseChangedV1]],
    unit: Emitter,
    *,
    store: StoreOf = SqlIntakeStore.of,
) -> None:
    """History keeps every phase, each transition of an event that reports several too; the
    current phase only moves forward in event time."""
    await store(unit).record_phases(
        [
            PhaseChange(
                workload_id=i.event.subject,
                phase=t.phase,
                message=t.message,
                at=t.time,
                running_pods=t.runningPods,
                requested_pods=t.requestedPods,
            )
            for i in items
            for t in i.event.transitions()
        ]
    )


async def record_catalog_changes(
    items: list[Incoming[CatalogAssetChangedV1]],
    unit: Emitter,
    *,
    store: StoreOf = SqlIntakeStore.of,
) -> None:
    """Keep intake's copy of the catalog; an event older than what is stored changes nothing."""
    entries: list[CatalogEntry] = []
    for item in items:
        try:
            view = AssetView.model_validate(item.event.data.asset)
        except ValidationError:
            log.warning("catalog event %s has no asset view; skipped", item.event.id)
            continue
        entries.append(CatalogEntry(view, item.event.data.change == "deleted", item.event.time))
    await store(unit).record_catalog(entries)


async def record_cluster_updates(
    items: list[Incoming[ClusterUpdatedV1]], unit: Emitter, *, store: StoreOf = SqlIntakeStore.of
) -> None:
    """Keep intake's copy of the cluster registry: each cluster's latest record."""
    latest = {
        i.event.data.clusterId: i.event.data
        for i in sorted(items, key=lambda i: i.event.data.reportedAt)
    }
    await store(unit).record_clusters(list(latest.values()))
