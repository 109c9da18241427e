"""Catalog handlers: plain functions over a connection; no framework imports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from berth.catalog import assets, credentials, seed, tables
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
from berth.contracts.events import (
    CatalogAssetChangedV1,
    ClusterConfigChangedV1,
    SubmissionReceivedV1,
    WorkloadPhaseChangedV1,
)
from berth.contracts.queries import ProjectInfo, ProjectLookupReply, ProjectLookupRequest
from berth.shared.consumer import Incoming, Unit, UnitFactory
from berth.shared.telemetry import extract

SOURCE = "/berth/catalog"


async def lookup_projects(
    request: ProjectLookupRequest, *, engine: AsyncEngine, tracer: trace.Tracer
) -> ProjectLookupReply:
    """One query for a batch of look-ups; each look-up joins its own workload's trace."""
    names = sorted({item.project for item in request.items})
    spans = [
        tracer.start_span(
            "lookup project",
            context=extract({"traceparent": item.traceparent} if item.traceparent else None),
            attributes={"berth.project": item.project},
        )
        for item in request.items
    ]
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(tables.projects).where(tables.projects.c.name.in_(names)))
        ).all()
    found = {
        r.name: ProjectInfo(
            name=r.name,
            department=r.department,
            clusterId=r.cluster_id,
            namespace=r.namespace,
            queue=r.queue,
            defaultNodePools=list(r.default_node_pools),
        )
        for r in rows
    }
    for span, item in zip(spans, request.items, strict=True):
        span.set_attribute("berth.project.found", item.project in found)
        span.end()
    return ProjectLookupReply(projects=found)


async def seed_demo(conn: AsyncConnection, cluster_id: str) -> list[CatalogAssetChangedV1]:
    """Insert the demo catalog where missing; return an event for each thing created."""
    actor = Actor.system("catalog")
    created: list[AssetView] = []

    async def add(table: Any, rows: list[dict[str, Any]], view: Callable[[Any], AssetView]) -> None:
        if rows:
            stmt = insert(table).values(rows).on_conflict_do_nothing().returning(table)
            created.extend(view(r) for r in await conn.execute(stmt))

    await add(
        tables.departments,
        [{"name": d["name"], "cluster_id": cluster_id} for d in seed.DEPARTMENTS],
        assets.department_view,
    )
    await add(
        tables.node_pools,
        [{**p, "cluster_id": cluster_id} for p in seed.NODE_POOLS],
        assets.nodepool_view,
    )
    await add(
        tables.projects,
        [seed.project_row(p, cluster_id) for p in seed.PROJECTS],
        assets.project_view,
    )
    await add(
        tables.assets,
        [{"id": f"{a['kind']}-{a['name']}", "scope_id": "", **a} for a in seed.ASSETS],
        assets.asset_view,
    )
    return [assets.changed(view, "created", actor) for view in created]


# --- assets by request-reply -------------------------------------------------------------------


@dataclass(frozen=True)
class Writer:
    """What a write needs: a unit of work (its events go out through the outbox), and the keys
    credential values come sealed to and are encrypted with."""

    begin: UnitFactory
    cluster_id: str
    keys: credentials.Keys


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
            view, event = await assets.put_asset(
                unit.conn,
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
            view, event = await assets.delete_asset(unit.conn, request.ref, request.actor)
            unit.emit(event)
    except assets.AssetError as exc:
        return AssetReply(error=str(exc), usedBy=exc.used_by)
    return AssetReply(asset=view)


async def get_asset(ref: AssetRef, *, engine: AsyncEngine) -> AssetReply:
    async with engine.connect() as conn:
        try:
            view = await assets.find_one(conn, ref)
        except assets.AssetError as exc:
            return AssetReply(error=str(exc))
        return AssetReply(asset=view, usedBy=await assets.users_of(conn, view))


async def list_assets(request: AssetListRequest, *, engine: AsyncEngine) -> AssetListReply:
    async with engine.connect() as conn:
        scopes = None
        if request.project:
            row = (
                await conn.execute(
                    select(tables.projects).where(tables.projects.c.name == request.project)
                )
            ).first()
            if row is None:
                return AssetListReply()
            scopes = project_scopes(row.name, row.department, row.cluster_id)
        views = await assets.list_assets(conn, request.kind, request.search, scopes)
    return AssetListReply(assets=views)


async def resolve_assets(
    request: AssetResolveRequest, *, engine: AsyncEngine, tracer: trace.Tracer
) -> AssetListReply:
    """Every candidate for the names a submission uses; the span joins the workload's trace."""
    context = extract({"traceparent": request.traceparent} if request.traceparent else None)
    with tracer.start_as_current_span("resolve assets", context=context) as span:
        span.set_attribute("berth.assets", [f"{r.kind}/{r.name}" for r in request.refs])
        async with engine.connect() as conn:
            views: list[AssetView] = []
            for ref in request.refs:
                views += await assets.find(conn, ref.model_copy(update={"scope": None}))
    return AssetListReply(assets=views)


# --- credential keys and values ---------------------------------------------------------------


async def get_key(_request: CatalogKeyRequest, *, keys: credentials.Keys) -> CatalogKeyReply:
    return CatalogKeyReply(key=keys.public_key())


async def deliver_credentials(
    request: CredentialDeliveryRequest, *, engine: AsyncEngine, keys: credentials.Keys
) -> CredentialDeliveryReply:
    async with engine.connect() as conn:
        return await credentials.deliver(conn, keys.storage, request)


async def record_cluster_keys(items: list[Incoming[ClusterConfigChangedV1]], unit: Unit) -> None:
    for item in sorted(items, key=lambda i: i.event.time):
        key = item.event.data.config.credentialKey
        if key is not None:
            await credentials.record_cluster_key(unit.conn, item.event.data.clusterId, key)


# --- assets by events --------------------------------------------------------------------------


async def apply_requests(
    items: list[Incoming[CatalogAssetRequestedV1]], unit: Unit, *, cluster_id: str
) -> None:
    """Each request in a savepoint of its own, so a refused one does not undo the others."""
    for item in items:
        data = item.event.data
        try:
            async with unit.conn.begin_nested():
                if data.operation == "delete":
                    ref = AssetRef(
                        kind=data.kind, name=data.name, scope=data.scope, scopeName=data.scopeName
                    )
                    _, event = await assets.delete_asset(unit.conn, ref, item.event.actor)
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
                    _, event = await assets.put_asset(
                        unit.conn, put, item.event.actor, cluster_id=cluster_id
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


# --- usage by workloads ------------------------------------------------------------------------


async def record_usage(items: list[Incoming[SubmissionReceivedV1]], unit: Unit) -> None:
    await assets.record_usage(
        unit.conn,
        [
            {
                "asset_id": used.assetId,
                "workload_id": i.event.subject,
                "workload": f"{i.event.data.workload.project}/{i.event.data.workload.name}",
            }
            for i in items
            for used in i.event.data.assets or ()
        ],
    )


async def release_usage(items: list[Incoming[WorkloadPhaseChangedV1]], unit: Unit) -> None:
    """A deleted workload no longer holds its assets."""
    await assets.release_usage(
        unit.conn, [i.event.subject for i in items if i.event.data.phase == "Deleted"]
    )
