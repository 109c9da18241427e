"""Everything intake listens to: subjects, durable names, delivery choices."""

from __future__ import annotations

from functools import partial

from berth.contracts.envelope import RawEvent
from berth.contracts.events import (
    CatalogAssetChangedV1,
    ClusterUpdatedV1,
    PolicyApprovedV1,
    PolicyRejectedV1,
    SubmissionReceivedV1,
    SubmissionRejectedV1,
    SubmissionRequestedV1,
    WorkloadPhaseChangedV1,
)
from berth.contracts.queries import (
    ActionTargetsRequest,
    AssetUsersRequest,
    ClusterListQuery,
    DryRunRequest,
    WorkloadQuery,
)
from berth.contracts.roles import INTAKE
from berth.contracts.subjects import (
    RPC_CLUSTERS_LIST,
    RPC_DRY_RUN,
    RPC_WORKLOADS_ACTION_TARGETS,
    RPC_WORKLOADS_GET,
    RPC_WORKLOADS_LIST,
    RPC_WORKLOADS_USING_ASSETS,
)
from berth.intake import clusters, handlers, queries, store
from berth.intake.catalog_client import ProjectDirectory
from berth.intake.tables import access_rules
from berth.shared.access import subscriptions as access_rule_subscriptions
from berth.shared.service import Service, Subscription


def register(service: Service, directory: ProjectDirectory) -> None:
    service.subscribe(
        Subscription(
            # Decoded leniently: a submission that does not validate becomes a named rejection,
            # not an undecodable message.
            event=RawEvent,
            subject_prefix=SubmissionRequestedV1.subject_prefix(),
            durable=SubmissionRequestedV1.durable(INTAKE),
            handler=partial(handlers.accept_submissions, directory=directory),
            operation="accept submission",
        )
    )
    service.subscribe(
        Subscription(
            PolicyApprovedV1,
            PolicyApprovedV1.durable(INTAKE),
            handlers.record_approvals,
            "record approval",
        )
    )
    service.subscribe(
        Subscription(
            PolicyRejectedV1,
            PolicyRejectedV1.durable(INTAKE),
            handlers.record_policy_rejections,
            "record rejection",
        )
    )
    service.subscribe(
        Subscription(
            WorkloadPhaseChangedV1,
            WorkloadPhaseChangedV1.durable(INTAKE),
            handlers.record_phases,
            "record phase",
        )
    )
    service.subscribe(
        Subscription(
            CatalogAssetChangedV1,
            CatalogAssetChangedV1.durable(INTAKE),
            handlers.record_catalog_changes,
            "record catalog change",
        )
    )
    service.subscribe(
        Subscription(
            ClusterUpdatedV1,
            ClusterUpdatedV1.durable(INTAKE),
            handlers.record_cluster_updates,
            "record cluster registry change",
        )
    )
    service.respond(
        RPC_CLUSTERS_LIST,
        ClusterListQuery,
        partial(clusters.list_clusters, engine=service.reads),
    )
    service.respond(
        RPC_DRY_RUN,
        DryRunRequest,
        partial(
            handlers.dry_run,
            reader=store.reader(service.reads),
            directory=directory,
            nc=lambda: service.broker.connection,
            tracer=service.tracer,
            timeout=10.0,
        ),
    )
    service.respond(
        RPC_WORKLOADS_GET, WorkloadQuery, partial(queries.get_workload, engine=service.reads)
    )
    service.respond(
        RPC_WORKLOADS_LIST, WorkloadQuery, partial(queries.list_workloads, engine=service.reads)
    )
    service.respond(
        RPC_WORKLOADS_USING_ASSETS,
        AssetUsersRequest,
        partial(queries.workloads_using_assets, engine=service.reads),
    )
    service.respond(
        RPC_WORKLOADS_ACTION_TARGETS,
        ActionTargetsRequest,
        partial(queries.action_targets, read=store.reader(service.reads)),
    )
    for subscription in access_rule_subscriptions(INTAKE, access_rules):
        service.subscribe(subscription)
    service.publishes(SubmissionReceivedV1, SubmissionRejectedV1)
