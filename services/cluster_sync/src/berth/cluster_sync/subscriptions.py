"""Everything cluster-sync listens to."""

from __future__ import annotations

from functools import partial

from berth.cluster_sync import handlers, queries
from berth.cluster_sync.tables import access_rules
from berth.contracts.events import (
    ClusterConfigChangedV1,
    ClusterConfigDesiredV1,
    ClusterConfigRejectedV1,
    ClusterConfigReportedV1,
    ClusterConfigRequestedV1,
    ClusterUpdatedV1,
)
from berth.contracts.queries import ClusterQuery
from berth.contracts.roles import CLUSTER_SYNC
from berth.contracts.subjects import RPC_CLUSTERS_GET
from berth.shared.access import subscriptions as access_rule_subscriptions
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
    service.respond(
        RPC_CLUSTERS_GET, ClusterQuery, partial(queries.get_clusters, engine=service.reads)
    )
    for subscription in access_rule_subscriptions(CLUSTER_SYNC, access_rules):
        service.subscribe(subscription)
    service.publishes(
        ClusterConfigChangedV1, ClusterConfigDesiredV1, ClusterConfigRejectedV1, ClusterUpdatedV1
    )
