"""Everything ownership listens to."""

from __future__ import annotations

from berth.contracts.events import (
    ClusterConfigChangedV1,
    SubmissionReceivedV1,
    WorkloadActionAuthorizedV1,
    WorkloadActionDeniedV1,
    WorkloadActionRequestedV1,
    WorkloadPhaseChangedV1,
)
from berth.ownership import handlers
from berth.shared.service import Service, Subscription


def register(service: Service) -> None:
    service.subscribe(
        Subscription(
            SubmissionReceivedV1, "ownership-owners", handlers.record_owners, "record owner"
        )
    )
    service.subscribe(
        Subscription(
            ClusterConfigChangedV1,
            "ownership-clusters",
            handlers.record_cluster_configs,
            "record cluster config",
        )
    )
    service.subscribe(
        Subscription(
            WorkloadPhaseChangedV1,
            "ownership-phases",
            handlers.record_phases,
            "record phase",
        )
    )
    service.subscribe(
        Subscription(
            WorkloadActionRequestedV1,
            "ownership-actions",
            handlers.authorize_actions,
            "authorize action",
        )
    )
    service.publishes(WorkloadActionAuthorizedV1, WorkloadActionDeniedV1)
