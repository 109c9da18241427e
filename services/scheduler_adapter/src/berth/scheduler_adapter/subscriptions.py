"""Everything the scheduler-adapter listens to."""

from __future__ import annotations

from dataclasses import dataclass
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
from berth.contracts.queries import LogsQuery, NodesQuery, PodsQuery, RenderRequest
from berth.contracts.roles import SCHEDULER_ADAPTER
from berth.contracts.subjects import rpc_logs, rpc_nodes, rpc_pods, rpc_render
from berth.scheduler_adapter import handlers, pods
from berth.scheduler_adapter.backend import ClusterBackend
from berth.scheduler_adapter.credentials import CredentialDelivery
from berth.scheduler_adapter.pods import PodReader
from berth.shared.service import Service, Subscription


@dataclass(frozen=True)
class Durables:
    """The durable consumers of one cluster's agent. Each agent has its own, so that several
    agents (one per cluster) each see every event and act only on their cluster's."""

    approved: str
    actions: str
    config: str
    credentials: str

    @classmethod
    def of(cls, cluster_id: str) -> Durables:
        # The names are declared with the events (their CONSUMERS), which the NATS
        # permissions are generated from.
        return cls(
            approved=PolicyApprovedV1.durable(SCHEDULER_ADAPTER, cluster_id),
            actions=WorkloadActionAuthorizedV1.durable(SCHEDULER_ADAPTER, cluster_id),
            config=ClusterConfigDesiredV1.durable(SCHEDULER_ADAPTER, cluster_id),
            credentials=CatalogAssetChangedV1.durable(SCHEDULER_ADAPTER, cluster_id),
        )


def register(
    service: Service,
    backend: ClusterBackend,
    cluster_id: str,
    credentials: CredentialDelivery | None = None,
) -> None:
    durables = Durables.of(cluster_id)
    service.subscribe(
        Subscription(
            PolicyApprovedV1,
            durables.approved,
            partial(handlers.schedule_workloads, backend=backend, cluster_id=cluster_id),
            "schedule",
        )
    )
    service.subscribe(
        Subscription(
            WorkloadActionAuthorizedV1,
            durables.actions,
            partial(handlers.act_on_actions, backend=backend, cluster_id=cluster_id),
            "act",
        )
    )
    service.subscribe(
        Subscription(
            ClusterConfigDesiredV1,
            durables.config,
            partial(handlers.apply_desired_config, backend=backend, cluster_id=cluster_id),
            "apply cluster config",
        )
    )
    if credentials is not None:
        # Per cluster as well: every agent refreshes the Secrets it made of a changed credential.
        service.subscribe(
            Subscription(
                CatalogAssetChangedV1,
                durables.credentials,
                partial(handlers.refresh_credentials, delivery=credentials),
                "refresh credentials",
            )
        )
    # Answered by the agent that works (a standby has no view of the cluster).
    service.respond(
        rpc_render(cluster_id),
        RenderRequest,
        partial(handlers.render_query, backend=backend),
        leader_only=True,
    )
    service.publishes(WorkloadScheduledV1, WorkloadPhaseChangedV1, ClusterConfigReportedV1)


def register_pod_queries(service: Service, reader: PodReader, cluster_id: str) -> None:
    """The pods and container logs of this cluster's workloads, for the CLI."""
    # Read from the agent's watches: only the agent that works has them.
    lead = {"leader_only": True}
    service.respond(
        rpc_pods(cluster_id), PodsQuery, partial(pods.pods_query, reader=reader), **lead
    )
    service.respond(
        rpc_logs(cluster_id), LogsQuery, partial(pods.logs_query, reader=reader), **lead
    )
    service.respond(
        rpc_nodes(cluster_id), NodesQuery, partial(pods.nodes_query, reader=reader), **lead
    )
