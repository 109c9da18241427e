"""Ownership handlers: which clusters protect ownership, and whether a requested action is
authorized (who created the workload, where it lives and its phase are intake's to say:
``workloads``).

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
    WorkloadActionAuthorizedData,
    WorkloadActionAuthorizedV1,
    WorkloadActionDeniedData,
    WorkloadActionDeniedV1,
    WorkloadActionRequestedV1,
    WorkloadRef,
)
from berth.ownership.rules import decide, protection_in_force
from berth.ownership.store import OwnershipStore, Said, SqlOwnershipStore
from berth.ownership.tables import access_rules
from berth.ownership.workloads import ActionTargets
from berth.shared.access import RulesOf, sql_rules
from berth.shared.consumer import Emitter, Incoming

log = logging.getLogger(__name__)

SOURCE = "/berth/ownership"


StoreOf = Callable[[Emitter], OwnershipStore]
"""The ownership store inside a unit of work's transaction."""


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


def access_refusal(
    actor: Actor, action: str, workload: WorkloadRef, rules: list[AccessRule]
) -> str | None:
    """Whether an access rule lets ``actor`` act on this workload where it lives: deleting
    needs ``<kind>.delete``, suspending and resuming ``<kind>.update``."""
    return refusal(
        actor,
        action,
        KIND_RESOURCE.get(workload.kind, "workloads"),
        "delete" if action == "delete" else "update",
        project_path(workload.project, workload.department, workload.clusterId),
        rules,
    )


async def authorize_actions(
    items: list[Incoming[WorkloadActionRequestedV1]],
    unit: Emitter,
    *,
    targets: ActionTargets,
    store: StoreOf = SqlOwnershipStore.of,
    rules: RulesOf = sql_rules(access_rules),
) -> None:
    """Access rules first (may the caller act in the workload's project at all?), then
    creator-only protection, then whether the workload's phase allows the action.

    The workloads come from intake, in one question for the batch; while intake cannot answer
    the question raises ``TransientError`` and the whole batch comes back later, undecided."""
    ids = [i.event.subject for i in items]
    # By name as well: a request from someone who may not read the workload (who cannot know
    # its id) names it; intake says which workload the name stands for.
    found = await targets(ids, [(i.event.data.project, i.event.data.name) for i in items])
    named = {(t.workload.project, t.workload.name): t for t in found.byName}
    db = store(unit)
    in_force = await rules(unit).access_rules()
    flags = {
        cluster_id: protection_in_force(p.reported, p.desired)
        for cluster_id, p in (await db.protections()).items()
    }
    for item in items:
        data = item.event.data
        target = found.byId.get(item.event.subject) or named.get((data.project, data.name))
        workload = target.workload if target else None
        cluster_id = workload.clusterId if workload else None
        reason = (
            access_refusal(item.event.actor, data.action, workload, in_force) if workload else None
        ) or decide(
            actor=item.event.actor.email,
            action=data.action,
            creator=workload.createdBy if workload else None,
            cluster_id=cluster_id,
            protection=bool(cluster_id and flags.get(cluster_id, False)),
        )
        if reason is None and target is not None:
            reason = lifecycle.refusal(
                kind=target.workload.kind, phase=target.phase, action=data.action
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
        if reason or workload is None:
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
                    **{**item.event.chain(), "subject": workload.workloadId},
                    data=WorkloadActionAuthorizedData(**data.model_dump(), workload=workload),
                ),
                cause=item,
            )
