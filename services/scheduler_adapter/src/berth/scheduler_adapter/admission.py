"""Admission within a project's deserved GPU quota.

A workload whose project has a quota (``WorkloadRef.quotaGpus``, set by intake) and that does not
allow over-quota is admitted only while the project's admitted workloads that hold quota
(``contracts.quota``, the rule intake tells by) leave room for it. Otherwise it is held: nothing
is applied, it is Pending with the reason, and it is admitted in arrival order as soon as
workloads of the project finish, stop or go away. The count is the cluster side's own (what it
actually admitted), so it cannot drift from what runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from opentelemetry import trace

from berth.contracts.envelope import Actor, Event
from berth.contracts.events import WorkloadRef, WorkloadScheduledData, WorkloadScheduledV1
from berth.contracts.quota import exceeds
from berth.scheduler_adapter.rendering import object_refs
from berth.scheduler_adapter.store import HELD, AdapterStore
from berth.shared.consumer import Cause
from berth.shared.telemetry import context_of

__all__ = ["HELD", "admit_held", "over_quota"]


def over_quota(project: str, requested: float, used: float, quota: float) -> str | None:
    """Why a workload cannot be admitted now, or None when it fits."""
    reason = exceeds(project, requested, used, quota)
    if reason is None:
        return None
    return f"over quota: {reason}; held until the project has room (or allow over-quota)"


class Emitter(Protocol):
    def emit(self, event: Event, cause: Cause = None) -> None: ...


async def admit_held(
    store: AdapterStore,
    unit: Emitter,
    projects: Iterable[str],
    *,
    source: str,
    actor: Actor,
    tracer: trace.Tracer,
) -> list[dict[str, Any]]:
    """Admit, oldest first, the held workloads of ``projects`` that now fit, emitting that each
    is scheduled; the objects to apply once committed.

    Strictly in order: a large workload at the head is not overtaken by smaller ones behind it,
    so it cannot starve.
    """
    names = sorted(set(projects))
    if not names:
        return []
    held = await store.held(names)
    used = await store.usage(names)
    blocked: set[str] = set()
    admitted: list[str] = []
    objects: list[dict[str, Any]] = []
    for row in held:
        ref = WorkloadRef.model_validate(row.ref)
        if ref.project in blocked or ref.quotaGpus is None:
            continue
        if over_quota(ref.project, row.gpus, used.get(ref.project, 0.0), ref.quotaGpus):
            blocked.add(ref.project)
            continue
        used[ref.project] = used.get(ref.project, 0.0) + row.gpus
        admitted.append(row.workload_id)
        # The admission continues the workload's own trace, stored with it at approval.
        span = tracer.start_span(
            "admit within quota",
            context=row.trace,
            attributes={"berth.subject": row.workload_id},
        )
        unit.emit(
            WorkloadScheduledV1(
                source=source,
                subject=row.workload_id,
                actor=actor,
                correlationid=row.correlation_id,
                data=WorkloadScheduledData(workload=ref, objects=object_refs(row.manifests)),
            ),
            cause=context_of(span),
        )
        span.end()
        objects.extend(row.manifests)
    await store.admit(admitted)
    return objects
