"""Everything the catalog listens to: subjects, queue groups, delivery choices."""

from __future__ import annotations

from functools import partial

from berth.catalog import applications, handlers
from berth.catalog.credentials import Keys
from berth.catalog.store import reader
from berth.catalog.usage import WorkloadUsers
from berth.contracts.access import (
    AccessRule,
    AccessRuleCreatedV1,
    AccessRuleCreateRequest,
    AccessRuleDeletedV1,
    AccessRuleDeleteRequest,
    AccessRuleListRequest,
)
from berth.contracts.applications import (
    ApplicationCreateRequest,
    ApplicationDeleteRequest,
    ApplicationListRequest,
    ApplicationTokenRequest,
)
from berth.contracts.catalog import (
    AssetDeleteRequest,
    AssetListRequest,
    AssetPutRequest,
    AssetRef,
    AssetResolveRequest,
    CatalogAssetRejectedV1,
    CatalogAssetRequestedV1,
    CatalogKeyRequest,
    CredentialDeliveryRequest,
)
from berth.contracts.events import CatalogAssetChangedV1, ClusterConfigChangedV1
from berth.contracts.queries import ProjectLookupRequest
from berth.contracts.roles import CATALOG
from berth.contracts.subjects import (
    RPC_ACCESS_RULES_CREATE,
    RPC_ACCESS_RULES_DELETE,
    RPC_ACCESS_RULES_LIST,
    RPC_CATALOG_APPLICATIONS_CREATE,
    RPC_CATALOG_APPLICATIONS_DELETE,
    RPC_CATALOG_APPLICATIONS_LIST,
    RPC_CATALOG_APPLICATIONS_TOKEN,
    RPC_CATALOG_ASSETS_DELETE,
    RPC_CATALOG_ASSETS_GET,
    RPC_CATALOG_ASSETS_LIST,
    RPC_CATALOG_ASSETS_PUT,
    RPC_CATALOG_ASSETS_RESOLVE,
    RPC_CATALOG_CREDENTIALS_DELIVER,
    RPC_CATALOG_KEYS_GET,
    RPC_CATALOG_PROJECTS_LOOKUP,
)
from berth.shared.service import Service, Subscription


def register(
    service: Service,
    cluster_id: str,
    keys: Keys,
    workloads: WorkloadUsers,
    issuer: applications.Issuer | None = None,
) -> None:
    read = reader(service.reads)
    if issuer is not None:
        register_applications(service, issuer)
    service.respond(
        RPC_CATALOG_PROJECTS_LOOKUP,
        ProjectLookupRequest,
        partial(handlers.lookup_projects, read=read, tracer=service.tracer),
    )
    writer = handlers.Writer(
        begin=service.unit_of_work, cluster_id=cluster_id, keys=keys, workloads=workloads
    )
    service.respond(
        RPC_CATALOG_ASSETS_PUT, AssetPutRequest, partial(handlers.put_asset, writer=writer)
    )
    service.respond(
        RPC_CATALOG_ASSETS_DELETE, AssetDeleteRequest, partial(handlers.delete_asset, writer=writer)
    )
    service.respond(
        RPC_ACCESS_RULES_CREATE,
        AccessRuleCreateRequest,
        partial(handlers.create_access_rule, writer=writer),
    )
    service.respond(
        RPC_ACCESS_RULES_DELETE,
        AccessRuleDeleteRequest,
        partial(handlers.delete_access_rule, writer=writer),
    )
    service.respond(
        RPC_ACCESS_RULES_LIST,
        AccessRuleListRequest,
        partial(handlers.list_access_rules, read=read),
    )
    service.respond(
        RPC_CATALOG_ASSETS_GET,
        AssetRef,
        partial(handlers.get_asset, read=read, workloads=workloads),
    )
    service.respond(
        RPC_CATALOG_ASSETS_LIST,
        AssetListRequest,
        partial(handlers.list_assets, read=read),
    )
    service.respond(
        RPC_CATALOG_ASSETS_RESOLVE,
        AssetResolveRequest,
        partial(handlers.resolve_assets, read=read, tracer=service.tracer),
    )
    service.respond(RPC_CATALOG_KEYS_GET, CatalogKeyRequest, partial(handlers.get_key, keys=keys))
    service.respond(
        RPC_CATALOG_CREDENTIALS_DELIVER,
        CredentialDeliveryRequest,
        partial(handlers.deliver_credentials, read=read, keys=keys),
    )
    # The key each cluster's agent seals to, as cluster-sync relays it from the agent's report.
    service.subscribe(
        Subscription(
            ClusterConfigChangedV1,
            ClusterConfigChangedV1.durable(CATALOG),
            handlers.record_cluster_keys,
            "record cluster key",
        )
    )
    service.subscribe(
        Subscription(
            CatalogAssetRequestedV1,
            CatalogAssetRequestedV1.durable(CATALOG),
            partial(handlers.apply_requests, cluster_id=cluster_id, workloads=workloads),
            "apply asset request",
        )
    )
    service.publishes(
        CatalogAssetChangedV1, CatalogAssetRejectedV1, AccessRuleCreatedV1, AccessRuleDeletedV1
    )


def register_applications(service: Service, issuer: applications.Issuer) -> None:
    stores = applications.sql_stores(service.engine)
    now = applications.utcnow
    read = reader(service.reads)

    async def rules() -> list[AccessRule]:
        async with read() as db:
            return await db.access_rules()

    service.respond(
        RPC_CATALOG_APPLICATIONS_CREATE,
        ApplicationCreateRequest,
        partial(applications.create, stores=stores, rules=rules, now=now),
    )
    service.respond(
        RPC_CATALOG_APPLICATIONS_LIST,
        ApplicationListRequest,
        partial(applications.list_, stores=stores, rules=rules),
    )
    service.respond(
        RPC_CATALOG_APPLICATIONS_DELETE,
        ApplicationDeleteRequest,
        partial(applications.delete_, stores=stores, rules=rules),
    )
    service.respond(
        RPC_CATALOG_APPLICATIONS_TOKEN,
        ApplicationTokenRequest,
        partial(applications.token, stores=stores, issuer=issuer, now=now),
    )
