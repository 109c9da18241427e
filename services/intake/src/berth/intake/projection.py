"""Intake's own copy of the catalog, fed by catalog events: the fallback when the catalog
service does not answer, and the source of project quotas."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from berth.contracts.catalog import AssetRef, AssetView
from berth.contracts.events import CatalogAssetChangedV1
from berth.contracts.queries import ProjectInfo
from berth.intake.tables import catalog_entries
from berth.shared.consumer import Incoming, Unit

log = logging.getLogger(__name__)


async def record_catalog_changes(items: list[Incoming[CatalogAssetChangedV1]], unit: Unit) -> None:
    """Upsert each entry; an event older than what is stored changes nothing."""
    rows: list[dict[str, Any]] = []
    for item in items:
        try:
            view = AssetView.model_validate(item.event.data.asset)
        except ValidationError:
            log.warning("catalog event %s has no asset view; skipped", item.event.id)
            continue
        rows.append(
            {
                "id": view.id,
                "kind": view.kind,
                "name": view.name,
                "asset": view.model_dump(mode="json"),
                "deleted": item.event.data.change == "deleted",
                "changed_at": item.event.time,
            }
        )
    if not rows:
        return
    stmt = insert(catalog_entries)
    await unit.conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[catalog_entries.c.id],
            set_={
                "kind": stmt.excluded.kind,
                "name": stmt.excluded.name,
                "asset": stmt.excluded.asset,
                "deleted": stmt.excluded.deleted,
                "changed_at": stmt.excluded.changed_at,
            },
            where=catalog_entries.c.changed_at <= stmt.excluded.changed_at,
        ),
        rows,
    )


def project_info(view: AssetView) -> ProjectInfo:
    spec = view.spec
    return ProjectInfo(
        name=view.name,
        department=spec.get("department"),
        clusterId=spec.get("clusterId", ""),
        namespace=spec.get("namespace", f"berth-{view.name}"),
        queue=spec.get("queue", view.name),
        defaultNodePools=list(spec.get("defaultNodePools", [])),
    )


async def entries(conn: AsyncConnection, keys: Sequence[tuple[str, str]]) -> list[AssetView]:
    if not keys:
        return []
    rows = await conn.execute(
        select(catalog_entries.c.asset).where(
            tuple_(catalog_entries.c.kind, catalog_entries.c.name).in_(list(keys)),
            catalog_entries.c.deleted.is_(False),
        )
    )
    return [AssetView.model_validate(r) for r in rows.scalars()]


async def projects(conn: AsyncConnection, names: Sequence[str]) -> dict[str, ProjectInfo]:
    views = await entries(conn, [("project", n) for n in set(names)])
    return {v.name: project_info(v) for v in views}


async def assets(conn: AsyncConnection, refs: Sequence[AssetRef]) -> list[AssetView]:
    return await entries(conn, [(r.kind, r.name) for r in refs])


async def node_pools(conn: AsyncConnection) -> set[str]:
    """Names of the node pools intake has seen in the catalog (none before the first event)."""
    rows = await conn.execute(
        select(catalog_entries.c.name).where(
            catalog_entries.c.kind == "nodepool", catalog_entries.c.deleted.is_(False)
        )
    )
    return set(rows.scalars())


async def project_quota(conn: AsyncConnection, name: str) -> list[dict[str, Any]]:
    views = await entries(conn, [("project", name)])
    return list(views[0].spec.get("quota", [])) if views else []
