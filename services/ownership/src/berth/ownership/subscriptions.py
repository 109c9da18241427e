"""Everything ownership listens to."""

from __future__ import annotations

from berth.contracts.events import (
    ClusterConfigChangedV1,
    ClusterConfigDesiredV1,
    SubmissionReceivedV1,
    WorkloadActionAuthorizedV1,
    WorkloadActionDeniedV1,
    WorkloadActionRequestedV1,
    WorkloadPhaseChangedV1,
)
from berth.contracts.roles import OWNERSHIP
from berth.ownership import handlers
from berth.ownership.tables import access_rules
from berth.shared.access import subscriptions as access_rule_subscriptions
from berth.shared.service import Service, Subscription


def register(service: Service) -> None:
    service.subscribe(
        Subscription(
            SubmissionReceivedV1,
            SubmissionReceivedV1.durable(OWNERSHIP),
            handlers.record_owners,
            "record owner",
        )
    )
    service.subscribe(
        Subscription(
            ClusterConfigChangedV1,
            ClusterConfigChangedV1.durable(OWNERSHIP),
            handlers.record_cluster_configs,
            "record cluster config",
        )
    )
    service.subscribe(
        Subscription(
            ClusterConfigDesiredV1,
            ClusterConfigDesiredV1.durable(OWNERSHIP),
            handlers.record_desired_configs,
            "record desired cluster config",
        )
    )
    service.subscribe(
        Subscription(
            WorkloadPhaseChangedV1,
            WorkloadPhaseChangedV1.durable(OWNERSHIP),
            handlers.record_phases,
            "record phase",
        )
    )
    service.subscribe(
        Subscription(
            WorkloadActionRequestedV1,
            WorkloadActionRequestedV1.durable(OWNERSHIP),
            handlers.authorize_actions,
            "authorize action",
        )
    )
    for subscription in access_rule_subscriptions(OWNERSHIP, access_rules):
        service.subscribe(subscription)
    service.publishes(WorkloadActionAuthorizedV1, WorkloadActionDeniedV1)
