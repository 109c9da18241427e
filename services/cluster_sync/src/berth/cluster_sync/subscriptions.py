"""Everything cluster-sync listens to."""

from __future__ import annotations

from berth.cluster_sync import handlers
from berth.contracts.events import (
    ClusterConfigChangedV1,
    ClusterConfigDesiredV1,
    ClusterConfigReportedV1,
    ClusterConfigRequestedV1,
    ClusterUpdatedV1,
    WorkloadScheduledV1,
)
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
    service.publishes(ClusterConfigChangedV1, ClusterConfigDesiredV1, ClusterUpdatedV1)
