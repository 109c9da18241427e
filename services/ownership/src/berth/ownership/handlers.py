"""Ownership handlers: who created each workload, which clusters protect ownership, and whether
a requested action is authorized.

Handlers reach storage only through the store port (``store.OwnershipStore``) and emit only
through their unit of work, so the same code runs on PostgreSQL in the service and on in-memory
fakes in unit tests."""

from __future__ import annotations

import logging
from collections.abc import Callable

from berth.contracts import lifecycle
from berth.contracts.access import KIND_RESOURCE, AccessRule, project_path, refusal
from berth.contracts.envelope import Actor
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
from berth.ownership.tables import access_rules
from berth.shared.access import RulesOf, sql_rules
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


def access_refusal(actor: Actor, action: str, owner: Owner, rules: list[AccessRule]) -> str | None:
    """Whether an access rule lets ``actor`` act on this workload where it lives: deleting
    needs ``<kind>.delete``, suspending and resuming ``<kind>.update``."""
    ref = owner.ref
    return refusal(
        actor,
        action,
        KIND_RESOURCE.get(str(ref.get("kind")), "workloads"),
        "delete" if action == "delete" else "update",
        project_path(str(ref.get("project")), ref.get("department"), ref.get("clusterId")),
        rules,
    )


async def authorize_actions(
    items: list[Incoming[WorkloadActionRequestedV1]],
    unit: Emitter,
    *,
    store: StoreOf = SqlOwnershipStore.of,
    rules: RulesOf = sql_rules(access_rules),
) -> None:
    """Access rules first (may the caller act in the workload's project at all?), then
    creator-only protection, then whether the workload's phase allows the action."""
    db = store(unit)
    in_force = await rules(unit).access_rules()
    ids = [i.event.subject for i in items]
    known = await db.owners(ids)
    # A request by name (from someone who may not read the workload, so cannot know its id).
    named = await db.owners_named(
        (i.event.data.project, i.event.data.name) for i in items if i.event.subject not in known
    )
    for item in items:
        if item.event.subject not in known and (
            found := named.get((item.event.data.project, item.event.data.name))
        ):
            known[item.event.subject] = found
    phases = await db.phases([o.workload_id for o in known.values()])
    flags = {
        cluster_id: protection_in_force(p.reported, p.desired)
        for cluster_id, p in (await db.protections()).items()
    }
    for item in items:
        data = item.event.data
        owner = known.get(item.event.subject)
        cluster_id = owner.cluster_id if owner else None
        reason = (
            access_refusal(item.event.actor, data.action, owner, in_force) if owner else None
        ) or decide(
            actor=item.event.actor.email,
            action=data.action,
            creator=owner.created_by if owner else None,
            cluster_id=cluster_id,
            protection=bool(cluster_id and flags.get(cluster_id, False)),
        )
        if reason is None and owner is not None:
            reason = lifecycle.refusal(
                kind=owner.ref.get("kind"),
                phase=phases.get(owner.workload_id),
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
                    # About the workload, also when the request named it by name only.
                    **{**item.event.chain(), "subject": owner.workload_id},
                    data=WorkloadActionAuthorizedData(
                        **data.model_dump(), workload=WorkloadRef.model_validate(owner.ref)
                    ),
                ),
                cause=item,
            )
