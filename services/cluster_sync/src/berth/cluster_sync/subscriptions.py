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
from berth.contracts.roles import CLUSTER_SYNC
from berth.shared.service import Service, Subscription


def register(service: Service) -> None:
    service.subscribe(
        Subscription(
            ClusterConfigReportedV1,
            ClusterConfigReportedV1.durable(CLUSTER_SYNC),
            handlers.record_reports,
            "record report",
        )
    )
    service.subscribe(
        Subscription(
            ClusterConfigRequestedV1,
            ClusterConfigRequestedV1.durable(CLUSTER_SYNC),
            handlers.forward_config_requests,
            "forward config request",
        )
    )
    service.subscribe(
        Subscription(
            WorkloadScheduledV1,
            WorkloadScheduledV1.durable(CLUSTER_SYNC),
            handlers.record_placements,
            "record placement",
        )
    )
    service.publishes(ClusterConfigChangedV1, ClusterConfigDesiredV1, ClusterUpdatedV1)
