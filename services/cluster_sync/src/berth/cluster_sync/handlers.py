"""cluster-sync handlers: reported state in, desired state out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from berth.cluster_sync.tables import clusters, placements
from berth.contracts.events import (
    ClusterConfig,
    ClusterConfigChangedData,
    ClusterConfigChangedV1,
    ClusterConfigDesiredV1,
    ClusterConfigReportedV1,
    ClusterConfigRequestedV1,
    WorkloadScheduledV1,
)
from berth.shared.consumer import Incoming, Unit

SOURCE = "/berth/cluster-sync"


def changed_keys(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    if old is None:
        return sorted(new)
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


async def record_reports(items: list[Incoming[ClusterConfigReportedV1]], unit: Unit) -> None:
    ids = [i.event.data.clusterId for i in items]
    known = {
        r.cluster_id: dict(r.config)
        for r in await unit.conn.execute(
            select(clusters.c.cluster_id, clusters.c.config).where(clusters.c.cluster_id.in_(ids))
        )
    }
    for item in sorted(items, key=lambda i: i.event.time):
        data = item.event.data
        config = data.config.model_dump(mode="json")
        changed = changed_keys(known.get(data.clusterId), config)
        known[data.clusterId] = config
        stmt = insert(clusters).values(
            cluster_id=data.clusterId,
            backend=data.backend,
            config=config,
            node_pools=data.nodePools,
            gpus=data.gpus,
            last_report_at=item.event.time,
        )
        await unit.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[clusters.c.cluster_id],
                set_={
                    "backend": stmt.excluded.backend,
                    "config": stmt.excluded.config,
                    "node_pools": stmt.excluded.node_pools,
                    "gpus": stmt.excluded.gpus,
                    "last_report_at": stmt.excluded.last_report_at,
                },
            )
        )
        item.span.set_attribute("berth.cluster.changed", ",".join(changed))
        if changed:
            unit.emit(
                ClusterConfigChangedV1(
                    source=SOURCE,
                    **item.event.chain(),
                    data=ClusterConfigChangedData(
                        clusterId=data.clusterId,
                        config=ClusterConfig.model_validate(config),
                        changed=changed,
                    ),
                ),
                cause=item,
            )


async def forward_config_requests(
    items: list[Incoming[ClusterConfigRequestedV1]], unit: Unit
) -> None:
    """Record what the administrator asked for and send it to the cluster's agent."""
    for item in items:
        data = item.event.data
        desired = data.settings.model_dump(exclude_none=True)
        stmt = insert(clusters).values(
            cluster_id=data.clusterId,
            backend="unknown",
            config={},
            desired=desired,
            last_report_at=item.event.time,
        )
        await unit.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[clusters.c.cluster_id],
                set_={"desired": clusters.c.desired.op("||")(stmt.excluded.desired)},
            )
        )
        unit.emit(
            ClusterConfigDesiredV1(source=SOURCE, **item.event.chain(), data=data), cause=item
        )


async def record_placements(items: list[Incoming[WorkloadScheduledV1]], unit: Unit) -> None:
    await unit.conn.execute(
        insert(placements).on_conflict_do_nothing(),
        [
            {
                "workload_id": i.event.subject,
                "cluster_id": i.event.data.workload.clusterId,
                "namespace": i.event.data.workload.namespace,
                "objects": [o.model_dump(mode="json") for o in i.event.data.objects],
                "scheduled_at": i.event.time,
            }
            for i in items
        ],
    )
