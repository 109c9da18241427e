"""Ownership handlers: who created each workload, which clusters protect ownership, and whether
a requested action is authorized.

Handlers reach storage only through the store port (``store.OwnershipStore``) and emit only
through their unit of work, so the same code runs on PostgreSQL in the service and on in-memory
fakes in unit tests."""

from __future__ import annotations

import logging
from collections.abc import Callable

from berth.contracts import lifecycle
from berth.contracts.events import (
    ClusterConfigChangedV1,
    ClusterConfigDesiredV1,
    SubmissionReceivedV1,
    WorkloadActionAuthorizedData,
    WorkloadActionAuthorizedV1,
    WorkloadActionDeniedData,
    WorkloadActionDeniedV1,
    WorkloadActionRequestedV1,
    WorkloadPhaseChangedV1,
    WorkloadRef,
)
from berth.ownership.rules import decide, protection_in_force
from berth.ownership.store import Owner, OwnershipStore, Phase, Said, SqlOwnershipStore
from berth.shared.consumer import Emitter, Incoming

log = logging.getLogger(__name__)

SOURCE = "/berth/ownership"


StoreOf = Callable[[Emitter], OwnershipStore]
"""The ownership store inside a unit of work's transaction."""


async def record_owners(
    items: list[Incoming[SubmissionReceivedV1]],
    unit: Emitter,
    *,
    store: StoreOf = SqlOwnershipStore.of,
) -> None:
    await store(unit).add_owners(
        [
            Owner(
                workload_id=i.event.subject,
                cluster_id=i.event.data.workload.clusterId,
                created_by=i.event.data.workload.createdBy,
                ref=i.event.data.workload.model_dump(mode="json"),
            )
            for i in items
        ]
    )


async def record_cluster_configs(
    items: list[Incoming[ClusterConfigChangedV1]],
    unit: Emitter,
    *,
    store: StoreOf = SqlOwnershipStore.of,
) -> None:
    latest = {
        i.event.data.clusterId: Said(
            i.event.data.clusterId, i.event.data.config.workloadOwnershipProtection, i.event.time
        )
        for i in sorted(items, key=lambda i: i.event.time)
    }
    await store(unit).record_reported(list(latest.values()))


async def record_desired_configs(
    items: list[Incoming[ClusterConfigDesiredV1]],
    unit: Emitter,
    *,
    store: StoreOf = SqlOwnershipStore.of,
) -> None:
    """What administrators asked for, per cluster (see ``rules.protection_in_force``); a desired
    config that does not mention protection leaves it as it was."""
    latest = {
        i.event.data.clusterId: Said(i.event.data.clusterId, protection, i.event.time)
        for i in sorted(items, key=lambda i: i.event.time)
        if (protection := i.event.data.settings.workloadOwnershipProtection) is not None
    }
    await store(unit).record_desired(list(latest.values()))


async def record_phases(
    items: list[Incoming[WorkloadPhaseChangedV1]],
    unit: Emitter,
    *,
    store: StoreOf = SqlOwnershipStore.of,
) -> None:
    """The latest phase per workload, in event time; a terminal phase is final."""
    latest = {
        i.event.subject: Phase(i.event.subject, i.event.data.phase, i.event.time)
        for i in sorted(items, key=lambda i: i.event.time)
    }
    await store(unit).record_phases(list(latest.values()))


async def authorize_actions(
    items: list[Incoming[WorkloadActionRequestedV1]],
    unit: Emitter,
    *,
    store: StoreOf = SqlOwnershipStore.of,
) -> None:
    db = store(unit)
    ids = [i.event.subject for i in items]
    known = await db.owners(ids)
    phases = await db.phases(ids)
    flags = {
        cluster_id: protection_in_force(p.reported, p.desired)
        for cluster_id, p in (await db.protections()).items()
    }
    for item in items:
        data = item.event.data
        owner = known.get(item.event.subject)
        cluster_id = owner.cluster_id if owner else None
        reason = decide(
            actor=item.event.actor.email,
            action=data.action,
            creator=owner.created_by if owner else None,
            cluster_id=cluster_id,
            protection=bool(cluster_id and flags.get(cluster_id, False)),
        )
        if reason is None and owner is not None:
            reason = lifecycle.refusal(
                kind=owner.ref.get("kind"),
                phase=phases.get(item.event.subject),
                action=data.action,
            )
        item.span.set_attribute("berth.outcome", "denied" if reason else "authorized")
        log.info(
            "%s of %r by %s %s",
            data.action,
            data.name,
            item.event.actor.email,
            f"denied: {reason}" if reason else "authorized",
            extra={"workload_id": item.event.subject, "event_id": str(item.event.id)},
        )
        if reason or owner is None:
            unit.emit(
                WorkloadActionDeniedV1(
                    source=SOURCE,
                    **item.event.chain(),
                    data=WorkloadActionDeniedData(**data.model_dump(), reason=reason or ""),
                ),
                cause=item,
            )
        else:
            unit.emit(
                WorkloadActionAuthorizedV1(
                    source=SOURCE,
                    **item.event.chain(),
                    data=WorkloadActionAuthorizedData(
                        **data.model_dump(), workload=WorkloadRef.model_validate(owner.ref)
                    ),
                ),
                cause=item,
            )
