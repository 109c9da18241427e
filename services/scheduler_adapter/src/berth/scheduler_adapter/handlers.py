"""Scheduler-adapter handlers: approved workloads become cluster objects; observed cluster state
becomes phase events; authorized actions act on the cluster; the cluster's config is reported.

Handlers decide over typed data, reach the adapter's state only through the store port
(``store.AdapterStore``, taken through a seam so that tests pass an in-memory one), emit only
through their unit of work, and leave the cluster calls that must follow the commit to
``unit.after_commit``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, cast

from opentelemetry import trace

from berth.contracts.catalog import credential_secret_name
from berth.contracts.envelope import Actor, Event, utcnow
from berth.contracts.events import (
    CatalogAssetChangedV1,
    ClusterConfig,
    ClusterConfigDesiredV1,
    ClusterConfigReportedData,
    ClusterConfigReportedV1,
    Phase,
    PhaseTransition,
    PolicyApprovedV1,
    WorkloadActionAuthorizedV1,
    WorkloadPhaseChangedData,
    WorkloadPhaseChangedV1,
    WorkloadRef,
    WorkloadScheduledData,
    WorkloadScheduledV1,
)
from berth.contracts.phases import (
    ACTION_RESULTS,
    ACTION_TRANSIT,
)
from berth.contracts.queries import RenderReply, RenderRequest
from berth.contracts.quota import holds_quota
from berth.contracts.runnable import check, describe
from berth.contracts.workload import requested_gpus
from berth.scheduler_adapter import admission
from berth.scheduler_adapter.backend import ClusterBackend, Listing, WorkloadSnapshot
from berth.scheduler_adapter.credentials import CredentialDelivery
from berth.scheduler_adapter.phases import derive_phase
from berth.scheduler_adapter.rendering import from_config, object_refs, render
from berth.scheduler_adapter.store import (
    HELD,
    AdapterStore,
    AppliedWorkload,
    PhaseChange,
    SqlAdapterStore,
)
from berth.shared.consumer import Emitter, Incoming
from berth.shared.errors import PermanentError
from berth.shared.telemetry import context_of, inject, trace_id_of

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)

SOURCE = "/berth/scheduler-adapter"
ACTOR = Actor.system("scheduler-adapter")

# Phases that contradict what the user asked for last: the cluster's watches are not ordered
# with one another, so e.g. a pod's deletion can be seen before its owner's, which would read
# as the workload going back to Creating in the middle of a delete.
STALE: dict[str, frozenset[str]] = {
    "Deleted": frozenset(
        {"Creating", "Pending", "Initializing", "Running", "Degraded", "Stopping", "Stopped"}
    ),
    "Stopped": frozenset({"Creating", "Pending", "Initializing", "Running", "Degraded"}),
    "Running": frozenset({"Stopping", "Stopped", "Deleting"}),
}


def phase_event(
    ref: WorkloadRef,
    *,
    phase: Phase,
    previous: str | None,
    message: str = "",
    reason: str = "",
    running: int = 0,
    requested: int = 0,
    correlation_id: str | None = None,
    actor: Actor = ACTOR,
) -> WorkloadPhaseChangedV1:
    return WorkloadPhaseChangedV1(
        source=SOURCE,
        subject=ref.workloadId,
        actor=actor,
        correlationid=correlation_id,
        data=WorkloadPhaseChangedData(
            workload=ref,
            phase=phase,
            previousPhase=previous,  # type: ignore[arg-type]
            message=message,
            reason=reason,
            runningPods=running,
            requestedPods=requested,
        ),
    )


def transitions_event(
    ref: WorkloadRef, transitions: list[PhaseTransition], *, correlation_id: str | None
) -> WorkloadPhaseChangedV1:
    """One event for the transitions a workload went through: the latest is its phase (and
    its time), the earlier ones its history."""
    *history, last = transitions
    return WorkloadPhaseChangedV1(
        source=SOURCE,
        subject=ref.workloadId,
        actor=ACTOR,
        correlationid=correlation_id,
        time=last.time,
        data=WorkloadPhaseChangedData(
            workload=ref,
            phase=last.phase,
            previousPhase=last.previousPhase,
            message=last.message,
            reason=last.reason,
            runningPods=last.runningPods,
            requestedPods=last.requestedPods,
            history=history,
        ),
    )


def mine(
    items: list[Incoming[E]], cluster_id: str, cluster_of: Callable[[E], str]
) -> list[Incoming[E]]:
    """The events meant for this agent's cluster. Every agent sees every event (each has durables
    of its own); an event for another cluster is acknowledged and left to that cluster's agent."""
    return [i for i in items if cluster_of(i.event) == cluster_id]


def _workload_cluster(event: PolicyApprovedV1 | WorkloadActionAuthorizedV1) -> str:
    return event.data.workload.clusterId


def _config_cluster(event: ClusterConfigDesiredV1) -> str:
    return event.data.clusterId


StoreOf = Callable[[Emitter], AdapterStore]
"""The adapter's store inside a unit of work's transaction."""


def _sql_store(unit: Emitter) -> AdapterStore:
    return SqlAdapterStore.of(unit)


async def schedule_workloads(
    items: list[Incoming[PolicyApprovedV1]],
    unit: Emitter,
    *,
    backend: ClusterBackend,
    cluster_id: str,
    store: StoreOf = _sql_store,
) -> None:
    """Render and apply each approved workload of this cluster; a workload that cannot be
    rendered fails alone."""
    items = mine(items, cluster_id, _workload_cluster)
    if not items:
        return
    db = store(unit)
    rows: list[AppliedWorkload] = []
    to_apply: list[dict[str, Any]] = []
    capabilities = from_config(await backend.read_config())
    used = await db.usage(
        i.event.data.workload.project for i in items if i.event.data.workload.quotaGpus is not None
    )
    for item in items:
        ref = item.event.data.workload
        correlation = str(item.event.correlationid or item.event.id)
        issues = check(item.event.data.effectiveSpec, capabilities, ref.clusterId)
        if issues:
            # Nothing is applied: the cluster would refuse it, or run it other than intended.
            unit.emit(
                phase_event(
                    ref,
                    phase="Failed",
                    previous=None,
                    reason="NotRunnable",
                    message=describe(issues),
                    correlation_id=correlation,
                ),
                cause=item,
            )
            continue
        try:
            manifests = render(
                ref,
                item.event.data.effectiveSpec,
                trace_id=trace_id_of(item.span),
                capabilities=capabilities,
            )
        except Exception as exc:
            log.exception("cannot render workload %s", ref.workloadId)
            item.span.record_exception(exc)
            unit.emit(
                phase_event(
                    ref,
                    phase="Failed",
                    previous=None,
                    reason="RenderError",
                    message=f"cannot render the workload: {exc}",
                    correlation_id=correlation,
                ),
                cause=item,
            )
            continue
        effective = item.event.data.effectiveSpec
        gpus = requested_gpus(effective.model_dump(mode="json", exclude_none=True))
        held = None
        if ref.quotaGpus is not None and not getattr(effective.spec, "allowOverQuota", False):
            held = admission.over_quota(
                ref.project, gpus, used.get(ref.project, 0.0), ref.quotaGpus
            )
        rows.append(
            AppliedWorkload(
                workload_id=ref.workloadId,
                ref=ref.model_dump(mode="json"),
                manifests=manifests,
                traceparent=inject(context_of(item.span)).get("traceparent"),
                correlation_id=correlation,
                project=ref.project,
                gpus=gpus,
                desired=HELD if held else "Running",
                phase="Pending" if held else None,
                phase_message=held or "",
            )
        )
        if held:
            item.span.set_attribute("berth.quota.held", True)
            unit.emit(
                phase_event(
                    ref,
                    phase="Pending",
                    previous=None,
                    reason="OverQuota",
                    message=held,
                    correlation_id=correlation,
                ),
                cause=item,
            )
            continue
        used[ref.project] = used.get(ref.project, 0.0) + gpus
        to_apply.extend(manifests)
        unit.emit(
            WorkloadScheduledV1(
                source=SOURCE,
                **item.event.chain(),
                data=WorkloadScheduledData(workload=ref, objects=object_refs(manifests)),
            ),
            cause=item,
        )
    await db.add(rows)
    if to_apply:
        # After the commit: the cluster reports on a workload at once, and the watch must find
        # the workload's row when it does. A crash in between is repaired by ``resync`` at start.
        unit.after_commit.append(partial(apply_objects, backend, to_apply))


async def apply_objects(backend: ClusterBackend, objects: list[dict[str, Any]]) -> None:
    """Apply; a permanent failure stops there, as the backend has already reported it as the
    workload's phase (retrying the event could not fix the manifest)."""
    try:
        await backend.apply(objects)
    except PermanentError as exc:
        log.warning("some objects were refused by the cluster: %s", exc)


@dataclass(frozen=True)
class Resynced:
    unfinished: int  # workloads that should run and have not finished
    applied: int  # of them, applied again


def needs_apply(row: AppliedWorkload, listing: Listing) -> bool:
    """Whether a restarted agent applies a workload again: unless the cluster's listing holds
    every object it was rendered into.

    One found in full was applied in full: the cluster runs it, and applying it again would
    change nothing (server-side apply of the same manifests) at one request per object. One
    whose top object is missing was recorded but never applied (a crash between the commit and
    the apply), or was removed while the agent was away: applied. So is one with an object of
    a kind the listing cannot tell of (a tool Service, a claim, an autoscaler, a PodGroup
    rendered by earlier versions): a crash between its top object and the rest would otherwise
    leave the rest missing for good."""
    return not all(listing.holds(m) for m in row.manifests)


async def resync(
    unit: Emitter, listing: Listing, *, backend: ClusterBackend, store: StoreOf = _sql_store
) -> Resynced:
    """Reconcile every workload that should run and has not finished with the cluster's
    ``listing`` (``backend.listed()``, awaited by the caller before the unit of work opens: the
    first listing of a large cluster takes seconds, too long to hold a transaction open):
    apply those it does not hold in full; the others' phases come from the listing through the
    snapshot feed, as any change would."""
    rows = await store(unit).unfinished()
    missing: list[dict[str, Any]] = []
    found: list[dict[str, Any]] = []
    applied = 0
    for row in rows:
        if needs_apply(row, listing):
            missing.extend(row.manifests)
            applied += 1
        else:
            found.extend(row.manifests)
    if found:
        await backend.adopt(found)
    if missing:
        await apply_objects(backend, missing)
    return Resynced(unfinished=len(rows), applied=applied)


async def act_on_actions(
    items: list[Incoming[WorkloadActionAuthorizedV1]],
    unit: Emitter,
    *,
    backend: ClusterBackend,
    cluster_id: str,
    store: StoreOf = _sql_store,
) -> None:
    items = mine(items, cluster_id, _workload_cluster)
    if not items:
        return
    db = store(unit)
    # Locked: a phase the cluster's report is recording right now (a workload already gone,
    # say) is waited for and judged here; read without waiting, the action would write its own
    # phase over it and announce it after.
    current = await db.current([i.event.subject for i in items], lock=True)
    for item in items:
        data = item.event.data
        ref = data.workload
        row = current.get(ref.workloadId)
        if row is None or row.phase == "Deleted":
            continue  # never scheduled here, or already gone: nothing to act on
        if row.desired == HELD and data.action != "resume":
            # Never applied: nothing to ask the cluster; the workload just leaves the queue.
            final: Phase = "Deleted" if data.action == "delete" else "Stopped"
            await db.set_phases(
                [PhaseChange(ref.workloadId, final, desired=ACTION_RESULTS[data.action])]
            )
            unit.emit(
                phase_event(
                    ref,
                    phase=final,
                    previous=row.phase,
                    actor=item.event.actor,
                    correlation_id=row.correlation_id,
                ),
                cause=item,
            )
            continue
        phase = ACTION_TRANSIT[data.action]
        previous: Phase | None
        # The new intent is recorded before the cluster is asked (same transaction), so what
        # the watch reports meanwhile is read against it.
        await db.set_phases(
            [PhaseChange(ref.workloadId, phase, desired=ACTION_RESULTS[data.action])]
        )
        try:
            if data.action == "delete":
                await backend.delete(ref.namespace, ref.workloadId)
            elif data.action == "suspend":
                await backend.suspend(ref.namespace, ref.workloadId)
            else:
                await backend.resume(ref.namespace, ref.workloadId)
        except PermanentError as exc:
            # The cluster cannot do it (e.g. suspending a Knative service): the workload stays
            # as it was, and the refusal is its phase message.
            log.warning("cannot %s workload %s: %s", data.action, ref.workloadId, exc)
            message = f"cannot {data.action}: {exc}"
            await db.set_phases(
                [PhaseChange(ref.workloadId, row.phase, message, desired=row.desired)]
            )
            phase = cast(Phase, row.phase or "Creating")
            previous = phase
        else:
            message, previous = "", cast(Phase | None, row.phase)
        unit.emit(
            phase_event(
                ref,
                phase=phase,
                previous=previous,
                message=message,
                actor=item.event.actor,
                correlation_id=row.correlation_id,
            ),
            cause=item,
        )


async def record_snapshots(
    snapshots: list[WorkloadSnapshot],
    unit: Emitter,
    *,
    backend: ClusterBackend,
    tracer: trace.Tracer,
    store: StoreOf = _sql_store,
) -> None:
    """Turn observed cluster state into phase events, only where the phase changed; then admit
    the held workloads that fit in the quota the finished, stopped or deleted ones gave back
    (applied once committed).

    A workload that changed phase several times in the batch gets one event: its latest
    phase, with the earlier transitions as the event's history."""
    db = store(unit)
    freed: set[str] = set()
    current = await db.current({s.workload_id for s in snapshots}, lock=True, manifests=False)
    # Typed once for the batch: ``Phase | None`` built per transition hashes the Literal anew.
    phases = cast(dict[str, Phase | None], {wid: row.phase for wid, row in current.items()})
    messages = {wid: row.phase_message for wid, row in current.items()}
    changes: dict[str, PhaseChange] = {}
    seen: dict[str, list[PhaseTransition]] = {}
    # Every snapshot in order, not just the latest per workload: each phase a workload passed
    # through is reported, even when several arrive in one batch.
    for snapshot in snapshots:
        workload_id = snapshot.workload_id
        row = current.get(workload_id)
        if row is None:
            continue  # not ours (or already forgotten)
        phase, message, reason, running, requested = derive_phase(snapshot)
        if phase in STALE.get(row.desired, ()):
            continue
        # A workload usually turns Pending before the scheduler has looked at it; the reason it
        # then gives is news the UIs need, so the first one is reported as well.
        explained = phase == "Pending" and message and not messages[workload_id]
        if phase == phases[workload_id] and not explained:
            continue
        seen.setdefault(workload_id, []).append(
            PhaseTransition(
                phase=phase,
                previousPhase=phases[workload_id],
                time=utcnow(),
                message=message,
                reason=reason,
                runningPods=running,
                requestedPods=requested,
            )
        )
        phases[workload_id] = phase
        messages[workload_id] = message
        changes[workload_id] = PhaseChange(workload_id, phase, message)
        if not holds_quota(phase):
            freed.add(str(row.ref.get("project")))
    for workload_id, transitions in seen.items():
        row = current[workload_id]
        phase = transitions[-1].phase
        # No message caused it: the phase event continues the trace stored with the workload.
        span = tracer.start_span(
            f"phase {phase}",
            context=row.trace,
            attributes={"berth.subject": workload_id, "berth.phase": phase},
        )
        if len(transitions) > 1:
            span.set_attribute("berth.phase.transitions", len(transitions))
        unit.emit(
            transitions_event(
                WorkloadRef.model_validate(row.ref),
                transitions,
                correlation_id=row.correlation_id,
            ),
            cause=context_of(span),
        )
        span.end()
    await db.set_phases(list(changes.values()))
    objects = await admission.admit_held(db, unit, freed, source=SOURCE, actor=ACTOR, tracer=tracer)
    if objects:
        unit.after_commit.append(partial(apply_objects, backend, objects))


async def config_report(backend: ClusterBackend, cluster_id: str) -> ClusterConfigReportedV1:
    config = await backend.read_config()
    return ClusterConfigReportedV1(
        source=SOURCE,
        subject=cluster_id,
        actor=ACTOR,
        data=ClusterConfigReportedData(
            clusterId=cluster_id,
            backend=backend.name,
            config=ClusterConfig.model_validate(
                {key: value for key, value in config.items() if key != "capabilities"}
            ),
            nodePools=list(config.get("nodePools", [])),
            gpus=int(config.get("gpus", 0)),
            capabilities=from_config(config),
        ),
    )


async def claim_schema(unit: Emitter, cluster_id: str, *, store: StoreOf = _sql_store) -> None:
    """Record that this schema holds ``cluster_id``'s agent; refuse another cluster's."""
    owner = await store(unit).claim_cluster(cluster_id)
    if owner != cluster_id:
        raise RuntimeError(
            f"this database holds the state of cluster {owner}'s agent, not {cluster_id}'s: "
            "give each cluster's agent a database of its own (BERTH_DATABASE_URL)"
        )


async def apply_desired_config(
    items: list[Incoming[ClusterConfigDesiredV1]],
    unit: Emitter,
    *,
    backend: ClusterBackend,
    cluster_id: str,
) -> None:
    """Apply settings meant for this agent's cluster, then report the cluster's config again."""
    ours = mine(items, cluster_id, _config_cluster)
    for item in ours:
        await backend.set_config(item.event.data.settings.model_dump(exclude_none=True))
    if ours:
        report = await config_report(backend, cluster_id)
        unit.emit(report.model_copy(update=ours[-1].event.chain()), cause=ours[-1])


async def refresh_credentials(
    items: list[Incoming[CatalogAssetChangedV1]], _unit: Emitter, *, delivery: CredentialDelivery
) -> None:
    """A credential's value may have changed: its Secrets are delivered again."""
    delivery.refresh(
        {
            credential_secret_name(i.event.data.name)
            for i in items
            if i.event.data.assetKind == "credential" and i.event.data.change == "updated"
        }
    )


async def render_query(request: RenderRequest, *, backend: ClusterBackend) -> RenderReply:
    """The objects a workload would become on this cluster, for a dry run: nothing is applied."""
    try:
        capabilities = from_config(await backend.read_config())
        issues = check(request.submission, capabilities, request.workload.clusterId)
        if issues:
            return RenderReply(issues=issues, error=describe(issues))
        manifests = render(
            request.workload, request.submission, trace_id=None, capabilities=capabilities
        )
        return RenderReply(manifests=manifests)
    except Exception as exc:
        return RenderReply(error=f"cannot render the workload: {exc}")
