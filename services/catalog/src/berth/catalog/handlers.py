"""Catalog handlers: the organisation, assets and credential values, by events and by
request-reply. Which workloads use an asset is intake's to say (``usage``).

Handlers reach storage only through the store port (``store.CatalogStore``; the rules of what a
change may do are in ``assets.py``) and emit only through their unit of work, so the same code
runs on PostgreSQL in the service and on in-memory fakes in unit tests."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from opentelemetry import trace

from berth.catalog import access, assets, credentials, seed
from berth.catalog.store import CatalogStore, NewAsset, Reader, SqlCatalogStore
from berth.catalog.usage import WorkloadUsers
from berth.contracts.access import (
    AccessRuleCreatedV1,
    AccessRuleCreateRequest,
    AccessRuleDeleteRequest,
    AccessRuleListReply,
    AccessRuleListRequest,
    AccessRuleReply,
)
from berth.contracts.catalog import (
    AssetDeleteRequest,
    AssetListReply,
    AssetListRequest,
    AssetPutRequest,
    AssetRef,
    AssetRejectedData,
    AssetReply,
    AssetResolveRequest,
    AssetView,
    CatalogAssetRejectedV1,
    CatalogAssetRequestedV1,
    CatalogKeyReply,
    CatalogKeyRequest,
    CredentialDeliveryReply,
    CredentialDeliveryRequest,
    project_scopes,
)
from berth.contracts.envelope import Actor
from berth.contracts.events import CatalogAssetChangedV1, ClusterConfigChangedV1
from berth.contracts.queries import ProjectLookupReply, ProjectLookupRequest
from berth.shared.consumer import Emitter, Incoming
from berth.shared.telemetry import extract

SOURCE = "/berth/catalog"


StoreOf = Callable[[Emitter], CatalogStore]
"""The catalog store inside a unit of work's transaction."""

Begin = Callable[[], AbstractAsyncContextManager[Emitter]]
"""Opens a unit of work (a transaction whose events commit with it)."""


async def lookup_projects(
    request: ProjectLookupRequest, *, read: Reader, tracer: trace.Tracer
) -> ProjectLookupReply:
    """One query for a batch of look-ups; each look-up joins its own workload's trace."""
    spans = [
        tracer.start_span(
            "lookup project",
            context=extract({"traceparent": item.traceparent} if item.traceparent else None),
            attributes={"berth.project": item.project},
        )
        for item in request.items
    ]
    async with read() as db:
        found = await db.projects(item.project for item in request.items)
    for span, item in zip(spans, request.items, strict=True):
        span.set_attribute("berth.project.found", item.project in found)
        span.end()
    return ProjectLookupReply(projects=found)


async def seed_demo(db: CatalogStore, cluster_id: str) -> list[CatalogAssetChangedV1]:
    """Insert the demo catalog where missing; return an event for each thing created."""
    actor = Actor.system("catalog")
    created: list[AssetView | None] = []
    for department in seed.DEPARTMENTS:
        row = {"name": department["name"], "cluster_id": cluster_id}
        created.append(await db.insert_org("department", row))
    for pool in seed.NODE_POOLS:
        created.append(await db.insert_org("nodepool", {**pool, "cluster_id": cluster_id}))
    for project in seed.PROJECTS:
        created.append(await db.insert_org("project", seed.project_row(project, cluster_id)))
    for asset in seed.ASSETS:
        created.append(
            await db.insert_asset(
                NewAsset(
                    id=f"{asset['kind']}-{asset['name']}",
                    kind=asset["kind"],
                    name=asset["name"],
                    scope=asset["scope"],
                    scope_name="",
                    spec=asset["spec"],
                    status=None,
                    status_reason="",
                    created_by="",
                )
            )
        )
    return [assets.changed(view, "created", actor) for view in created if view is not None]


# --- assets by request-reply -------------------------------------------------------------------


@dataclass(frozen=True)
class Writer:
    """What a write needs: a unit of work (its events go out through the outbox), the keys
    credential values come sealed to and are encrypted with, and who to ask which workloads use
    an asset before deleting it."""

    begin: Begin
    cluster_id: str
    keys: credentials.Keys
    workloads: WorkloadUsers
    store: StoreOf = SqlCatalogStore.of


async def put_asset(request: AssetPutRequest, *, writer: Writer) -> AssetReply:
    try:
        values = credentials.open_values(
            writer.keys.sealing,
            clear=request.secretValues,
            sealed=request.sealedValues,
            key_id=request.keyId,
        )
    except credentials.ValuesRefused as exc:
        return AssetReply(error=str(exc))
    put = assets.Put(
        kind=request.kind,
        name=request.name,
        scope=request.scope,
        scope_name=request.scopeName,
        spec=request.spec,
        status=request.status,
        status_reason=request.statusReason,
        update=request.update,
    )
    try:
        async with writer.begin() as unit:
            await _authorize_put(writer.store(unit), request.actor, put, writer.cluster_id)
            view, event = await assets.put_asset(
                writer.store(unit),
                put,
                request.actor,
                cluster_id=writer.cluster_id,
                secret_values=values,
                keys=writer.keys.storage,
            )
            unit.emit(event)
    except assets.AssetError as exc:
        return AssetReply(error=str(exc), usedBy=exc.used_by)
    return AssetReply(asset=view)


async def delete_asset(request: AssetDeleteRequest, *, writer: Writer) -> AssetReply:
    try:
        async with writer.begin() as unit:
            await _authorize_delete(writer.store(unit), request.actor, request.ref)
            view, event = await assets.delete_asset(
                writer.store(unit), request.ref, request.actor, writer.workloads
            )
            unit.emit(event)
    except assets.AssetError as exc:
        return AssetReply(error=str(exc), usedBy=exc.used_by)
    return AssetReply(asset=view)


async def _authorize_put(
    db: CatalogStore, actor: Actor | None, put: assets.Put, cluster_id: str
) -> None:
    problem = await access.asset_refusal(
        db,
        actor,
        "update" if put.update else "create",
        put.kind,
        put.name,
        put.scope,
        put.scope_name,
        put.spec,
        cluster_id,
    )
    if problem:
        raise assets.AssetError(problem)


async def _authorize_delete(db: CatalogStore, actor: Actor | None, ref: AssetRef) -> None:
    view = await assets.find_one(db, ref)
    problem = await access.asset_refusal(
        db, actor, "delete", view.kind, view.name, view.scope, view.scopeName, view.spec, ""
    )
    if problem:
        raise assets.AssetError(problem)


async def get_asset(ref: AssetRef, *, read: Reader, workloads: WorkloadUsers) -> AssetReply:
    async with read() as db:
        try:
            view = await assets.find_one(db, ref)
            return AssetReply(asset=view, usedBy=await assets.users_of(db, view, workloads))
        except assets.AssetError as exc:
            return AssetReply(error=str(exc))


async def list_assets(request: AssetListRequest, *, read: Reader) -> AssetListReply:
    async with read() as db:
        scopes = None
        if request.project:
            project = (await db.projects([request.project])).get(request.project)
            if project is None:
                return AssetListReply()
            scopes = project_scopes(project.name, project.department, project.clusterId)
        views = await db.list_assets(request.kind, request.search, scopes)
    return AssetListReply(assets=views)


async def resolve_assets(
    request: AssetResolveRequest, *, read: Reader, tracer: trace.Tracer
) -> AssetListReply:
    """Every candidate for the names a submission uses; the span joins the workload's trace."""
    context = extract({"traceparent": request.traceparent} if request.traceparent else None)
    with tracer.start_as_current_span("resolve assets", context=context) as span:
        span.set_attribute("berth.assets", [f"{r.kind}/{r.name}" for r in request.refs])
        async with read() as db:
            views: list[AssetView] = []
            for ref in request.refs:
                views += await db.find(ref.model_copy(update={"scope": None}))
    return AssetListReply(assets=views)


# --- access rules ------------------------------------------------------------------------------


async def create_access_rule(
    request: AccessRuleCreateRequest, *, writer: Writer
) -> AccessRuleReply:
    try:
        async with writer.begin() as unit:
            rule = await access.create_rule(writer.store(unit), request)
            assert request.actor is not None
            unit.emit(access.created(rule, request.actor))
    except access.Refused as exc:
        return AccessRuleReply(error=str(exc))
    return AccessRuleReply(accessRule=rule)


async def delete_access_rule(
    request: AccessRuleDeleteRequest, *, writer: Writer
) -> AccessRuleReply:
    try:
        async with writer.begin() as unit:
            rule = await access.delete_rule(writer.store(unit), request.id, request.actor)
            assert request.actor is not None
            unit.emit(access.deleted(rule, request.actor))
    except access.Refused as exc:
        return AccessRuleReply(error=str(exc))
    return AccessRuleReply(accessRule=rule)


async def list_access_rules(request: AccessRuleListRequest, *, read: Reader) -> AccessRuleListReply:
    async with read() as db:
        try:
            rules = await access.list_rules(db, request)
        except access.Refused as exc:
            return AccessRuleListReply(error=str(exc))
    return AccessRuleListReply(
        totalRecords=len(rules), displayRecords=len(rules), accessRules=rules
    )


async def bootstrap_access(
    db: CatalogStore, *, admin: str | None, demo: bool, cluster_id: str
) -> list[AccessRuleCreatedV1]:
    """The first administrator and the demo rules, where missing (see ``access.bootstrap``)."""
    return await access.bootstrap(db, admin=admin, demo=demo, cluster_id=cluster_id)


# --- credential keys and values ---------------------------------------------------------------


async def get_key(_request: CatalogKeyRequest, *, keys: credentials.Keys) -> CatalogKeyReply:
    return CatalogKeyReply(key=keys.public_key())


async def deliver_credentials(
    request: CredentialDeliveryRequest, *, read: Reader, keys: credentials.Keys
) -> CredentialDeliveryReply:
    async with read() as db:
        return await credentials.deliver(db, keys.storage, request)


async def record_cluster_keys(
    items: list[Incoming[ClusterConfigChangedV1]],
    unit: Emitter,
    *,
    store: StoreOf = SqlCatalogStore.of,
) -> None:
    db = store(unit)
    for item in sorted(items, key=lambda i: i.event.time):
        key = item.event.data.config.credentialKey
        if key is not None:
            await db.record_cluster_key(item.event.data.clusterId, key)


# --- assets by events --------------------------------------------------------------------------


async def apply_requests(
    items: list[Incoming[CatalogAssetRequestedV1]],
    unit: Emitter,
    *,
    cluster_id: str,
    workloads: WorkloadUsers,
    store: StoreOf = SqlCatalogStore.of,
) -> None:
    """Each request in a savepoint of its own, so a refused one does not undo the others."""
    db = store(unit)
    for item in items:
        data = item.event.data
        try:
            async with db.savepoint():
                if data.operation == "delete":
                    ref = AssetRef(
                        kind=data.kind, name=data.name, scope=data.scope, scopeName=data.scopeName
                    )
                    await _authorize_delete(db, item.event.actor, ref)
                    _, event = await assets.delete_asset(db, ref, item.event.actor, workloads)
                else:
                    put = assets.Put(
                        kind=data.kind,
                        name=data.name,
                        scope=data.scope,
                        scope_name=data.scopeName,
                        spec=data.spec,
                        status=data.status,
                        status_reason=data.statusReason,
                        update=data.operation == "update",
                    )
                    await _authorize_put(db, item.event.actor, put, cluster_id)
                    _, event = await assets.put_asset(
                        db, put, item.event.actor, cluster_id=cluster_id
                    )
        except assets.AssetError as exc:
            unit.emit(
                CatalogAssetRejectedV1(
                    source=SOURCE,
                    **item.event.chain(),
                    data=AssetRejectedData(
                        kind=data.kind, name=data.name, reason=str(exc), usedBy=exc.used_by
                    ),
                ),
                cause=item,
            )
            continue
        unit.emit(event.model_copy(update={"causationid": item.event.id}), cause=item)
