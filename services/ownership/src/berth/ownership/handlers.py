"""Ownership handlers."""

from __future__ import annotations

import logging

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects.postgresql import insert

from berth.contracts.events import (
    TERMINAL_PHASES,
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
from berth.ownership import lifecycle
from berth.ownership.rules import decide, protection_in_force
from berth.ownership.tables import clusters, owners, workload_phases
from berth.shared.consumer import Incoming, Unit

log = logging.getLogger(__name__)

SOURCE = "/berth/ownership"


async def record_owners(items: list[Incoming[SubmissionReceivedV1]], unit: Unit) -> None:
    await unit.conn.execute(
        insert(owners).on_conflict_do_nothing(),
        [
            {
                "workload_id": i.event.subject,
                "cluster_id": i.event.data.workload.clusterId,
                "created_by": i.event.data.workload.createdBy,
                "ref": i.event.data.workload.model_dump(mode="json"),
            }
            for i in items
        ],
    )


async def record_cluster_configs(items: list[Incoming[ClusterConfigChangedV1]], unit: Unit) -> None:
    rows = {
        i.event.data.clusterId: {
            "cluster_id": i.event.data.clusterId,
            "protection": i.event.data.config.workloadOwnershipProtection,
            "updated_at": i.event.time,
        }
        for i in sorted(items, key=lambda i: i.event.time)
    }
    stmt = insert(clusters)
    await unit.conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[clusters.c.cluster_id],
            set_={"protection": stmt.excluded.protection, "updated_at": stmt.excluded.updated_at},
            # A late, older report must not undo a newer one.
            where=or_(
                clusters.c.updated_at.is_(None), clusters.c.updated_at <= stmt.excluded.updated_at
            ),
        ),
        list(rows.values()),
    )


async def record_desired_configs(items: list[Incoming[ClusterConfigDesiredV1]], unit: Unit) -> None:
    """What administrators asked for, per cluster (see ``rules.protection_in_force``)."""
    rows = {
        i.event.data.clusterId: {
            "cluster_id": i.event.data.clusterId,
            "desired_protection": i.event.data.settings.workloadOwnershipProtection,
            "desired_at": i.event.time,
        }
        for i in sorted(items, key=lambda i: i.event.time)
        if i.event.data.settings.workloadOwnershipProtection is not None
    }
    if not rows:
        return
    stmt = insert(clusters)
    await unit.conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[clusters.c.cluster_id],
            set_={
                "desired_protection": stmt.excluded.desired_protection,
                "desired_at": stmt.excluded.desired_at,
            },
            where=or_(
                clusters.c.desired_at.is_(None), clusters.c.desired_at <= stmt.excluded.desired_at
            ),
        ),
        list(rows.values()),
    )


async def record_phases(items: list[Incoming[WorkloadPhaseChangedV1]], unit: Unit) -> None:
    """The latest phase per workload, in event time; a terminal phase is final."""
    latest: dict[str, Incoming[WorkloadPhaseChangedV1]] = {}
    for item in sorted(items, key=lambda i: i.event.time):
        latest[item.event.subject] = item
    stmt = insert(workload_phases)
    await unit.conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[workload_phases.c.workload_id],
            set_={"phase": stmt.excluded.phase, "at": stmt.excluded.at},
            where=and_(
                workload_phases.c.at <= stmt.excluded.at,
                workload_phases.c.phase.not_in(sorted(TERMINAL_PHASES)),
            ),
        ),
        [
            {"workload_id": wid, "phase": i.event.data.phase, "at": i.event.time}
            for wid, i in latest.items()
        ],
    )


async def authorize_actions(items: list[Incoming[WorkloadActionRequestedV1]], unit: Unit) -> None:
    ids = [i.event.subject for i in items]
    known = {
        r.workload_id: r
        for r in await unit.conn.execute(select(owners).where(owners.c.workload_id.in_(ids)))
    }
    phases = {
        r.workload_id: r.phase
        for r in await unit.conn.execute(
            select(workload_phases).where(workload_phases.c.workload_id.in_(ids))
        )
    }
    flags = {
        r.cluster_id: protection_in_force(r.protection, r.desired_protection)
        for r in await unit.conn.execute(select(clusters))
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
                kind=(owner.ref or {}).get("kind"),
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
