"""Everything ownership listens to."""

from __future__ import annotations

from functools import partial

from berth.contracts.events import (
    ClusterConfigChangedV1,
    ClusterConfigDesiredV1,
    WorkloadActionAuthorizedV1,
    WorkloadActionDeniedV1,
    WorkloadActionRequestedV1,
)
from berth.contracts.roles import OWNERSHIP
from berth.ownership import handlers
from berth.ownership.tables import access_rules
from berth.ownership.workloads import ActionTargets
from berth.shared.access import subscriptions as access_rule_subscriptions
from berth.shared.service import Service, Subscription


def register(service: Service, targets: ActionTargets) -> None:
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
    # Submissions and phases are not followed: intake describes the workloads an action names
    # when one is requested (berth.ownership.workloads).
    service.subscribe(
        Subscription(
            WorkloadActionRequestedV1,
            WorkloadActionRequestedV1.durable(OWNERSHIP),
            partial(handlers.authorize_actions, targets=targets),
            "authorize action",
        )
    )
    for subscription in access_rule_subscriptions(OWNERSHIP, access_rules):
        service.subscribe(subscription)
    service.publishes(WorkloadActionAuthorizedV1, WorkloadActionDeniedV1)
