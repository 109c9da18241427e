"""Everything the scheduler-adapter listens to."""

from __future__ import annotations

from functools import partial

from berth.contracts.events import (
    CatalogAssetChangedV1,
    ClusterConfigDesiredV1,
    ClusterConfigReportedV1,
    PolicyApprovedV1,
    WorkloadActionAuthorizedV1,
    WorkloadPhaseChangedV1,
    WorkloadScheduledV1,
)
from berth.contracts.queries import RenderRequest
from berth.contracts.subjects import RPC_RENDER
from berth.scheduler_adapter import handlers
from berth.scheduler_adapter.backend import ClusterBackend
from berth.scheduler_adapter.credentials import CredentialDelivery
from berth.shared.service import Service, Subscription


def register(
    service: Service,
    backend: ClusterBackend,
    cluster_id: str,
    credentials: CredentialDelivery | None = None,
) -> None:
    service.subscribe(
        Subscription(
            PolicyApprovedV1,
            "scheduler-adapter-approved",
            partial(handlers.schedule_workloads, backend=backend),
            "schedule",
        )
    )
    service.subscribe(
        Subscription(
            WorkloadActionAuthorizedV1,
            "scheduler-adapter-actions",
            partial(handlers.act_on_actions, backend=backend),
            "act",
        )
    )
    # Each cluster's agent has its own durable, so every agent sees every desired-config event.
    service.subscribe(
        Subscription(
            ClusterConfigDesiredV1,
            f"scheduler-adapter-config-{cluster_id}",
            partial(handlers.apply_desired_config, backend=backend, cluster_id=cluster_id),
            "apply cluster config",
        )
    )
    if credentials is not None:
        # Per cluster as well: every agent refreshes the Secrets it made of a changed credential.
        service.subscribe(
            Subscription(
                CatalogAssetChangedV1,
                f"scheduler-adapter-credentials-{cluster_id}",
                partial(handlers.refresh_credentials, delivery=credentials),
                "refresh credentials",
            )
        )
    service.respond(RPC_RENDER, RenderRequest, partial(handlers.render_query, backend=backend))
    service.publishes(WorkloadScheduledV1, WorkloadPhaseChangedV1, ClusterConfigReportedV1)
