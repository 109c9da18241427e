"""Intake's own copy of the catalog, fed by catalog events: the fallback when the catalog
service does not answer, and the source of project quotas."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from berth.contracts.access import OrgTree
from berth.contracts.catalog import AssetRef, AssetView
from berth.contracts.queries import ProjectInfo
from berth.intake.tables import catalog_entries


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


async def org_tree(conn: AsyncConnection) -> OrgTree:
    """Where each project and department sits, from intake's copy of the catalog."""
    rows = await conn.execute(
        select(catalog_entries.c.kind, catalog_entries.c.name, catalog_entries.c.asset).where(
            catalog_entries.c.kind.in_(["project", "department"]),
            catalog_entries.c.deleted.is_(False),
        )
    )
    projects: dict[str, tuple[str | None, str | None]] = {}
    departments: dict[str, str | None] = {}
    for kind, name, asset in rows:
        spec = (asset or {}).get("spec") or {}
        if kind == "project":
            projects[name] = (spec.get("department"), spec.get("clusterId"))
        else:
            departments[name] = spec.get("clusterId")
    return OrgTree(projects, departments)
