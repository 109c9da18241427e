"""cluster-sync handlers: reported state in, desired state out.

Handlers reach storage only through the store port (``store.ClusterSyncStore``) and emit only
through their unit of work, so the same code runs on PostgreSQL in the service and on in-memory
fakes in unit tests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from berth.cluster_sync.store import (
    ClusterSyncStore,
    DesiredChange,
    SqlClusterSyncStore,
)
from berth.cluster_sync.tables import access_rules
from berth.contracts.access import TENANT, refusal
from berth.contracts.envelope import Actor
from berth.contracts.events import (
    ClusterConfig,
    ClusterConfigChangedData,
    ClusterConfigChangedV1,
    ClusterConfigDesiredV1,
    ClusterConfigRejectedData,
    ClusterConfigRejectedV1,
    ClusterConfigReportedV1,
    ClusterConfigRequestedData,
    ClusterConfigRequestedV1,
    ClusterRecord,
    ClusterSettings,
    ClusterUpdatedV1,
)
from berth.shared.access import RulesOf, sql_rules
from berth.shared.consumer import Emitter, Incoming

log = logging.getLogger(__name__)

SOURCE = "/berth/cluster-sync"
ACTOR = Actor.system("cluster-sync")


StoreOf = Callable[[Emitter], ClusterSyncStore]
"""The registry inside a unit of work's transaction."""


def changed_keys(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    if old is None:
        return sorted(new)
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


# Fields of a report that the registry keeps in columns of their own; anything else a report
# carries (fields added to the report later) is kept in ``extra``.
REPORT_FIELDS = frozenset({"clusterId", "backend", "config", "nodePools", "gpus", "capabilities"})


def record_of(event: ClusterConfigReportedV1) -> ClusterRecord:
    """The registry's record of a cluster, from one report."""
    reported = event.data.model_dump(mode="json")
    capabilities = reported.get("capabilities") or {}
    return ClusterRecord(
        clusterId=event.data.clusterId,
        backend=event.data.backend,
        config=event.data.config,
        nodePools=event.data.nodePools,
        gpus=event.data.gpus,
        capabilities=capabilities if isinstance(capabilities, dict) else {},
        extra={k: v for k, v in reported.items() if k not in REPORT_FIELDS},
        reportedAt=event.time,
    )


def same_state(old: ClusterRecord | None, new: ClusterRecord) -> bool:
    """Whether a report tells nothing new (its time aside)."""
    return old is not None and old.model_dump(exclude={"reportedAt"}) == new.model_dump(
        exclude={"reportedAt"}
    )


def drift(desired: dict[str, Any], reported: dict[str, Any]) -> dict[str, Any]:
    """The desired settings the reported config does not have (yet)."""
    return {k: v for k, v in desired.items() if reported.get(k) != v}


async def record_reports(
    items: list[Incoming[ClusterConfigReportedV1]],
    unit: Emitter,
    *,
    store: StoreOf = SqlClusterSyncStore.of,
) -> None:
    """Register or update each reporting cluster; level-triggered towards the desired config.

    Agents report at start and then periodically. Each report that differs from what
    administrators asked for (an agent restarted and lost the setting, a cluster edited by
    hand, a desired event lost) sends the whole desired config down again, until a report
    matches: nothing depends on a single desired event arriving.
    """
    db = store(unit)
    ids = list({i.event.data.clusterId for i in items})
    stored = await db.clusters(ids)
    known = {cluster_id: r.record for cluster_id, r in stored.items()}
    announced = {cluster_id for cluster_id, r in stored.items() if r.announced}
    wanted = await db.desired(ids)
    latest: dict[str, Incoming[ClusterConfigReportedV1]] = {}
    for item in sorted(items, key=lambda i: i.event.time):
        record = record_of(item.event)
        old = known.get(record.clusterId)
        if old is not None and old.reportedAt > record.reportedAt:
            continue  # a late, older report must not undo a newer one
        latest[record.clusterId] = item
        known[record.clusterId] = record
        config = record.config.model_dump(mode="json")
        changed = changed_keys(old.config.model_dump(mode="json") if old else None, config)
        item.span.set_attribute("berth.cluster.changed", ",".join(changed))
        if not same_state(old, record) or record.clusterId not in announced:
            announced.add(record.clusterId)
            unit.emit(
                ClusterUpdatedV1(source=SOURCE, **_about(item, record.clusterId), data=record),
                cause=item,
            )
        if changed:
            unit.emit(
                ClusterConfigChangedV1(
                    source=SOURCE,
                    **item.event.chain(),
                    data=ClusterConfigChangedData(
                        clusterId=record.clusterId,
                        config=ClusterConfig.model_validate(config),
                        changed=changed,
                    ),
                ),
                cause=item,
            )
    await db.save_clusters([known[cluster_id] for cluster_id in latest])
    for cluster_id, item in latest.items():
        desired = wanted.get(cluster_id, {})
        missing = drift(desired, known[cluster_id].config.model_dump(mode="json"))
        if not missing:
            continue
        item.span.set_attribute("berth.cluster.drift", ",".join(sorted(missing)))
        unit.emit(
            ClusterConfigDesiredV1(
                source=SOURCE,
                **_about(item, cluster_id),
                data=ClusterConfigRequestedData(
                    clusterId=cluster_id, settings=ClusterSettings.model_validate(desired)
                ),
            ),
            cause=item,
        )


async def mark_disconnected(
    now: datetime,
    unit: Emitter,
    *,
    after: timedelta,
    store: StoreOf = SqlClusterSyncStore.of,
) -> list[str]:
    """Mark the clusters whose agents have been silent for ``after`` disconnected and announce
    it; their workloads show phase Unknown until the agent reports again (``record_reports``
    then announces the cluster connected). Returns the clusters marked."""
    marked = await store(unit).disconnect(now - after)
    for record in marked:
        unit.emit(
            ClusterUpdatedV1(source=SOURCE, subject=record.clusterId, actor=ACTOR, data=record)
        )
    return [record.clusterId for record in marked]


def _about(item: Incoming[Any], cluster_id: str) -> dict[str, Any]:
    """Envelope fields of an event about a cluster, caused by ``item``."""
    return {**item.event.chain(), "subject": cluster_id, "actor": ACTOR}


async def forward_config_requests(
    items: list[Incoming[ClusterConfigRequestedV1]],
    unit: Emitter,
    *,
    store: StoreOf = SqlClusterSyncStore.of,
    rules: RulesOf = sql_rules(access_rules),
) -> None:
    """Record what the administrator asked for and send it to the cluster's agent; a caller
    without ``cluster-config.update`` on the cluster gets a rejection instead.

    The request is kept whether or not the cluster has registered yet: an agent that reports
    later gets it then (see ``record_reports``)."""
    in_force = await rules(unit).access_rules()
    allowed: list[Incoming[ClusterConfigRequestedV1]] = []
    for item in items:
        cluster = item.event.data.clusterId
        problem = refusal(
            item.event.actor,
            "configure",
            "cluster-config",
            "update",
            (TENANT, ("cluster", cluster)),
            in_force,
        )
        if problem is None:
            allowed.append(item)
            continue
        log.info("config request for cluster %s refused: %s", cluster, problem)
        unit.emit(
            ClusterConfigRejectedV1(
                source=SOURCE,
                **item.event.chain(),
                data=ClusterConfigRejectedData(**item.event.data.model_dump(), reason=problem),
            ),
            cause=item,
        )
    items = allowed
    await store(unit).merge_desired(
        [
            DesiredChange(
                cluster_id=i.event.data.clusterId,
                settings=i.event.data.settings.model_dump(exclude_none=True),
                at=i.event.time,
            )
            for i in items
        ]
    )
    for item in items:
        unit.emit(
            ClusterConfigDesiredV1(source=SOURCE, **item.event.chain(), data=item.event.data),
            cause=item,
        )
