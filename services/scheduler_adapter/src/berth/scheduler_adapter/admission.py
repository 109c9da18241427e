"""Admission within a project's deserved GPU quota.

A workload whose project has a quota (``WorkloadRef.quotaGpus``, set by intake) and that does not
allow over-quota is admitted only while the project's admitted, unfinished workloads leave room
for it. Otherwise it is held: nothing is applied, it is Pending with the reason, and it is
admitted in arrival order as soon as workloads of the project finish, stop or go away. The count
is the cluster side's own (what it actually admitted), so it cannot drift from what runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry import trace
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from berth.contracts.envelope import Actor
from berth.contracts.events import WorkloadRef, WorkloadScheduledData, WorkloadScheduledV1
from berth.contracts.phases import QUOTA_FREE_PHASES
from berth.scheduler_adapter.render import object_refs
from berth.scheduler_adapter.tables import workloads
from berth.shared import outbox
from berth.shared.telemetry import context_of, extract

HELD = "Held"


def over_quota(project: str, requested: float, used: float, quota: float) -> str | None:
    """Why a workload cannot be admitted now, or None when it fits."""
    if used + requested <= quota:
        return None
    return (
        f"over quota: requests {requested:g} GPU while project {project} uses {used:g} of its "
        f"deserved {quota:g}; held until the project has room (or allow over-quota)"
    )


async def usage(conn: AsyncConnection, projects: Iterable[str]) -> dict[str, float]:
    """GPUs of the admitted, unfinished workloads of each project."""
    names = sorted(set(projects))
    if not names:
        return {}
    rows = await conn.execute(
        select(workloads.c.project, func.sum(workloads.c.gpus))
        .where(
            workloads.c.project.in_(names),
            workloads.c.desired == "Running",
            or_(workloads.c.phase.is_(None), workloads.c.phase.not_in(sorted(QUOTA_FREE_PHASES))),
        )
        .group_by(workloads.c.project)
    )
    return {project: float(total or 0) for project, total in rows}


async def admit_held(
    conn: AsyncConnection,
    projects: Iterable[str],
    *,
    source: str,
    actor: Actor,
    tracer: trace.Tracer,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Admit, oldest first, the held workloads of ``projects`` that now fit.

    Returns the outbox rows to write and the objects to apply once committed. Strictly in
    order: a large workload at the head is not overtaken by smaller ones behind it, so it
    cannot starve.
    """
    names = sorted(set(projects))
    if not names:
        return [], []
    held = (
        await conn.execute(
            select(workloads)
            .where(workloads.c.project.in_(names), workloads.c.desired == HELD)
            .order_by(workloads.c.updated_at, workloads.c.workload_id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    used = await usage(conn, names)
    blocked: set[str] = set()
    rows: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    for row in held:
        ref = WorkloadRef.model_validate(row.ref)
        if row.project in blocked or ref.quotaGpus is None:
            continue
        if over_quota(ref.project, row.gpus, used.get(ref.project, 0.0), ref.quotaGpus):
            blocked.add(row.project)
            continue
        used[ref.project] = used.get(ref.project, 0.0) + row.gpus
        await conn.execute(
            update(workloads)
            .where(workloads.c.workload_id == row.workload_id)
            .values(desired="Running", phase_message="")
        )
        span = tracer.start_span(
            "admit within quota",
            context=extract({"traceparent": row.traceparent} if row.traceparent else None),
            attributes={"berth.subject": row.workload_id},
        )
        event = WorkloadScheduledV1(
            source=source,
            subject=row.workload_id,
            actor=actor,
            correlationid=row.correlation_id,
            data=WorkloadScheduledData(workload=ref, objects=object_refs(row.manifests)),
        )
        rows.append(outbox.outbox_row(event, context_of(span)))
        span.end()
        objects.extend(row.manifests)
    return rows, objects
