"""Everything cluster-sync listens to."""

from __future__ import annotations

from functools import partial

from berth.cluster_sync import handlers, queries
from berth.contracts.events import (
    ClusterConfigChangedV1,
    ClusterConfigDesiredV1,
    ClusterConfigReportedV1,
    ClusterConfigRequestedV1,
    WorkloadScheduledV1,
)
from berth.contracts.queries import ClusterQuery
from berth.contracts.subjects import RPC_CLUSTERS_GET
from berth.shared.service import Service, Subscription


def register(service: Service) -> None:
    service.subscribe(
        Subscription(
            ClusterConfigReportedV1,
            "cluster-sync-reports",
            handlers.record_reports,
            "record report",
        )
    )
    service.subscribe(
        Subscription(
            ClusterConfigRequestedV1,
            "cluster-sync-config-requests",
            handlers.forward_config_requests,
            "forward config request",
        )
    )
    service.subscribe(
        Subscription(
            WorkloadScheduledV1,
            "cluster-sync-placements",
            handlers.record_placements,
            "record placement",
        )
    )
    service.respond(
        RPC_CLUSTERS_GET, ClusterQuery, partial(queries.get_clusters, engine=service.engine)
    )
    service.publishes(ClusterConfigChangedV1, ClusterConfigDesiredV1)
