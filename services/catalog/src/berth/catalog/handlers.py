"""Catalog handlers: plain functions over a connection; no framework imports."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from berth.catalog import seed
from berth.catalog.tables import assets, departments, node_pools, projects
from berth.contracts.envelope import Actor
from berth.contracts.events import AssetChangedData, CatalogAssetChangedV1
from berth.contracts.queries import ProjectInfo, ProjectLookupReply, ProjectLookupRequest
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
        rows = (await conn.execute(select(projects).where(projects.c.name.in_(names)))).all()
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
    created: list[tuple[str, str, dict[str, Any]]] = []

    async def add(table: Any, rows: list[dict[str, Any]], key: str, kind: str) -> None:
        if not rows:
            return
        stmt = insert(table).values(rows).on_conflict_do_nothing().returning(table.c[key])
        new = set((await conn.execute(stmt)).scalars())
        created.extend((kind, row[key], row) for row in rows if row[key] in new)

    await add(
        departments,
        [{"name": d["name"], "cluster_id": cluster_id} for d in seed.DEPARTMENTS],
        "name",
        "department",
    )
    await add(
        node_pools, [{**p, "cluster_id": cluster_id} for p in seed.NODE_POOLS], "name", "nodepool"
    )
    await add(projects, [seed.project_row(p, cluster_id) for p in seed.PROJECTS], "name", "project")
    await add(
        assets,
        [{"id": f"{a['kind']}-{a['name']}", "scope_id": "", **a} for a in seed.ASSETS],
        "id",
        "asset",
    )
    return [
        CatalogAssetChangedV1(
            source=SOURCE,
            subject=str(key),
            actor=Actor.system("catalog"),
            data=AssetChangedData(
                assetKind=row.get("kind", kind) if kind == "asset" else kind,
                assetId=str(key),
                name=row["name"],
                change="created",
                scope=row.get("scope", "tenant"),
                asset={k: v for k, v in row.items() if k not in ("created_at", "updated_at")},
            ),
        )
        for kind, key, row in created
    ]
