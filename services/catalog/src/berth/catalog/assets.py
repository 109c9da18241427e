"""The catalog's store: organisation units and assets, read and written over one connection.

Every write returns the ``CatalogAssetChangedV1`` events it caused; the caller puts them in the
outbox of the same transaction. Credential values are stored encrypted (``credentials.py``)
and never read back here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from berth.catalog import credentials
from berth.catalog.keys import KeyProvider
from berth.catalog.tables import (
    asset_usage,
    assets,
    departments,
    node_pools,
    projects,
)
from berth.contracts.catalog import (
    CREDENTIAL_KEYS,
    DATASOURCE_CREDENTIAL,
    AssetRef,
    AssetView,
    credential_secret_name,
    project_scopes,
    validate_spec,
    visible_to,
)
from berth.contracts.envelope import Actor
from berth.contracts.events import AssetChangedData, CatalogAssetChangedV1
from berth.contracts.issues import issues_from, sentence

SOURCE = "/berth/catalog"
ORGANISATION = ("department", "project", "nodepool")


class AssetError(Exception):
    """A refused change; the message names what and why (never a secret value)."""

    def __init__(self, message: str, used_by: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.used_by = list(used_by)


@dataclass(frozen=True)
class Put:
    """A create or update, whether it came by request-reply or by event."""

    kind: str
    name: str
    scope: str
    scope_name: str
    spec: dict[str, Any]
    status: str | None = None
    status_reason: str = ""
    update: bool = False


def changed(view: AssetView, change: str, actor: Actor) -> CatalogAssetChangedV1:
    return CatalogAssetChangedV1(
        source=SOURCE,
        subject=view.id,
        actor=actor,
        data=AssetChangedData(
            assetKind=view.kind,
            assetId=view.id,
            name=view.name,
            change=change,  # type: ignore[arg-type]
            scope=view.scope,
            asset=view.model_dump(mode="json"),
        ),
    )


# --- organisation ----------------------------------------------------------------------------


def department_view(row: Any) -> AssetView:
    return AssetView(
        id=f"department-{row.name}",
        kind="department",
        name=row.name,
        scope="cluster",
        scopeName=row.cluster_id,
        spec={"clusterId": row.cluster_id, "quota": list(row.quota or [])},
    )


def project_view(row: Any) -> AssetView:
    parent = ("department", row.department) if row.department else ("cluster", row.cluster_id)
    return AssetView(
        id=f"project-{row.name}",
        kind="project",
        name=row.name,
        scope=parent[0],  # type: ignore[arg-type]
        scopeName=parent[1],
        spec={
            "department": row.department,
            "clusterId": row.cluster_id,
            "namespace": row.namespace,
            "queue": row.queue,
            "defaultNodePools": list(row.default_node_pools or []),
            "quota": list(row.quota or []),
        },
    )


def nodepool_view(row: Any) -> AssetView:
    return AssetView(
        id=f"nodepool-{row.name}",
        kind="nodepool",
        name=row.name,
        scope="cluster",
        scopeName=row.cluster_id,
        spec={
            "labelKey": row.label_key,
            "labelValue": row.label_value,
            "placement": row.placement,
            "nodeTypes": list(row.node_types or []),
        },
    )


_ORG: dict[str, tuple[Table, Any]] = {
    "department": (departments, department_view),
    "project": (projects, project_view),
    "nodepool": (node_pools, nodepool_view),
}


def _org_row(kind: str, name: str, spec: dict[str, Any], cluster_id: str) -> dict[str, Any]:
    cluster = spec.get("clusterId") or cluster_id
    if kind == "department":
        return {"name": name, "cluster_id": cluster, "quota": spec.get("quota", [])}
    if kind == "project":
        return {
            "name": name,
            "department": spec.get("department"),
            "cluster_id": cluster,
            "namespace": spec.get("namespace") or f"berth-{name}",
            "queue": spec.get("queue") or name,
            "default_node_pools": spec.get("defaultNodePools", []),
            "quota": spec.get("quota", []),
        }
    return {
        "name": name,
        "cluster_id": cluster,
        "label_key": spec["labelKey"],
        "label_value": spec["labelValue"],
        "placement": spec.get("placement", "binpack"),
        "node_types": spec.get("nodeTypes", []),
    }


async def _put_org(conn: AsyncConnection, put: Put, cluster_id: str) -> AssetView:
    table, view = _ORG[put.kind]
    row = _org_row(put.kind, put.name, put.spec, cluster_id)
    if put.kind == "project" and row["department"]:
        found = await conn.scalar(
            select(departments.c.name).where(departments.c.name == row["department"])
        )
        if found is None:
            raise AssetError(f'department "{row["department"]}" does not exist')
    if put.update:
        values = {k: v for k, v in row.items() if k != "name"}
        result = (
            await conn.execute(
                update(table).where(table.c.name == put.name).values(**values).returning(table)
            )
        ).first()
        if result is None:
            raise AssetError(f'{put.kind} "{put.name}" does not exist')
        return view(result)  # type: ignore[no-any-return]
    if put.kind == "project":
        taken = await conn.scalar(
            select(projects.c.name).where(projects.c.namespace == row["namespace"])
        )
        if taken is not None:
            raise AssetError(f'namespace "{row["namespace"]}" is taken by project "{taken}"')
    result = (
        await conn.execute(insert(table).values(row).on_conflict_do_nothing().returning(table))
    ).first()
    if result is None:
        raise AssetError(f'{put.kind} "{put.name}" already exists')
    return view(result)  # type: ignore[no-any-return]


# --- assets ----------------------------------------------------------------------------------


def asset_view(row: Any) -> AssetView:
    spec = dict(row.spec or {})
    if row.kind == "credential":
        # Whatever an older install stored: the Secret is the one every side derives.
        spec["secretName"] = credential_secret_name(row.name)
    return AssetView(
        id=row.id,
        kind=row.kind,
        name=row.name,
        scope=row.scope,
        scopeName=row.scope_id,
        spec=spec,
        status=row.status,
        statusReason=row.status_reason,
        createdBy=row.created_by,
    )


async def _check_scope(conn: AsyncConnection, scope: str, scope_name: str) -> None:
    if scope == "tenant":
        if scope_name:
            raise AssetError("the tenant scope takes no scope name")
        return
    if not scope_name:
        raise AssetError(f"a {scope} scope needs a name")
    table = {"department": departments, "project": projects}.get(scope)
    if table is not None:
        found = await conn.scalar(select(table.c.name).where(table.c.name == scope_name))
        if found is None:
            raise AssetError(f'{scope} "{scope_name}" does not exist')


async def _exists(conn: AsyncConnection, kind: str, name: str) -> list[AssetView]:
    rows = await conn.execute(select(assets).where(assets.c.kind == kind, assets.c.name == name))
    return [asset_view(r) for r in rows]


async def scopes_seen_from(
    conn: AsyncConnection, scope: str, scope_name: str, cluster_id: str
) -> set[tuple[str, str]]:
    """The scopes whose assets an asset of ``scope`` may use: itself and its ancestors."""
    if scope == "tenant":
        return {("tenant", "")}
    if scope == "cluster":
        return {("tenant", ""), ("cluster", scope_name)}
    if scope == "department":
        return {("tenant", ""), ("cluster", cluster_id), ("department", scope_name)}
    row = (
        await conn.execute(
            select(projects.c.department, projects.c.cluster_id).where(
                projects.c.name == scope_name
            )
        )
    ).first()
    department, cluster = (row.department, row.cluster_id) if row else (None, cluster_id)
    return project_scopes(scope_name, department, cluster)


async def _check_references(
    conn: AsyncConnection, put: Put, spec: dict[str, Any], cluster_id: str
) -> None:
    """Referenced assets must exist, and a template's must be visible from its scope (else
    every workload built from it would be refused); a data source's credential must be of the
    right type."""
    wanted: list[tuple[str, str]] = []
    if put.kind == "template":
        wanted += [("environment", spec["environment"])] if spec.get("environment") else []
        wanted += [("compute", spec["compute"])] if spec.get("compute") else []
        wanted += [("datasource", n) for n in spec.get("dataSources", [])]
    seen = await scopes_seen_from(conn, put.scope, put.scope_name, cluster_id) if wanted else set()
    for kind, name in wanted:
        found = await _exists(conn, kind, name)
        if not found:
            raise AssetError(f'{kind} "{name}" does not exist')
        if not any(visible_to(view, seen) for view in found):
            where = ", ".join(sorted({f"{v.scope} {v.scopeName}".strip() for v in found}))
            raise AssetError(
                f'{kind} "{name}" is not visible from {_scope_text(put)}: it belongs to {where}'
            )
    if put.kind == "datasource" and spec.get("credential"):
        needed = DATASOURCE_CREDENTIAL[spec["type"]]
        found = await _exists(conn, "credential", spec["credential"])
        if not found:
            raise AssetError(f'credential "{spec["credential"]}" does not exist')
        if all(c.spec.get("type") != needed for c in found):
            raise AssetError(
                f'credential "{spec["credential"]}" is not of type {needed}, '
                f"which a {spec['type']} data source needs"
            )


def _check_secret_values(spec: dict[str, Any], values: dict[str, str]) -> None:
    allowed = CREDENTIAL_KEYS[spec["type"]] or tuple(spec.get("keys", ()))
    unknown = sorted(set(values) - set(allowed))
    if unknown and allowed:
        # Names of keys only: the values themselves never go into a message.
        raise AssetError(
            f"unknown credential keys {', '.join(unknown)}; expected {', '.join(allowed)}"
        )


async def put_asset(
    conn: AsyncConnection,
    put: Put,
    actor: Actor,
    *,
    cluster_id: str,
    secret_values: dict[str, str] | None = None,
    keys: KeyProvider | None = None,
) -> tuple[AssetView, CatalogAssetChangedV1]:
    try:
        spec = validate_spec(put.kind, put.spec)
    except ValidationError as exc:
        problems = "; ".join(sentence(i) for i in issues_from(exc, drop=()))
        raise AssetError(f"{put.kind} {put.name}: {problems}") from None
    except ValueError as exc:
        raise AssetError(f"{put.kind} {put.name}: {exc}") from None
    if put.kind in ORGANISATION:
        view = await _put_org(conn, put.__class__(**{**put.__dict__, "spec": spec}), cluster_id)
        return view, changed(view, "updated" if put.update else "created", actor)
    await _check_scope(conn, put.scope, put.scope_name)
    await _check_references(conn, put, spec, cluster_id)
    if put.kind == "credential":
        secret_name = credential_secret_name(put.name)
        if spec.get("secretName", secret_name) != secret_name:
            raise AssetError(
                f"secretName: the Secret of credential {put.name} is always {secret_name} "
                "(the name workloads refer to); leave secretName unset"
            )
        spec["secretName"] = secret_name
        if secret_values:
            _check_secret_values(spec, secret_values)
    elif secret_values:
        raise AssetError(f"secret values: only a credential takes them, not a {put.kind}")
    status = put.status
    if put.kind == "datasource" and status is None and not put.update:
        status = "No status"
    key = (
        assets.c.kind == put.kind,
        assets.c.scope == put.scope,
        assets.c.scope_id == put.scope_name,
        assets.c.name == put.name,
    )
    if put.update:
        values: dict[str, Any] = {"spec": spec, "updated_at": func.now()}
        if status is not None:
            values.update(status=status, status_reason=put.status_reason)
        row = (
            await conn.execute(update(assets).where(*key).values(values).returning(assets))
        ).first()
        if row is None:
            raise AssetError(f'{put.kind} "{put.name}" does not exist in {_scope_text(put)}')
    else:
        row = (
            await conn.execute(
                insert(assets)
                .values(
                    id=f"{put.kind}-{uuid.uuid4().hex[:12]}",
                    kind=put.kind,
                    name=put.name,
                    scope=put.scope,
                    scope_id=put.scope_name,
                    spec=spec,
                    status=status,
                    status_reason=put.status_reason,
                    created_by=actor.email,
                )
                .on_conflict_do_nothing()
                .returning(assets)
            )
        ).first()
        if row is None:
            raise AssetError(f'{put.kind} "{put.name}" already exists in {_scope_text(put)}')
    if put.kind == "credential" and secret_values:
        if keys is None:
            raise AssetError("credential values cannot be stored here: no key provider")
        await credentials.store(conn, keys, row.id, secret_values)
    view = asset_view(row)
    return view, changed(view, "updated" if put.update else "created", actor)


def _scope_text(put: Put) -> str:
    return "the tenant" if put.scope == "tenant" else f'{put.scope} "{put.scope_name}"'


async def find(conn: AsyncConnection, ref: AssetRef) -> list[AssetView]:
    if ref.kind in ORGANISATION:
        table, view = _ORG[ref.kind]
        rows = await conn.execute(select(table).where(table.c.name == ref.name))
        return [view(r) for r in rows]
    stmt = select(assets).where(assets.c.kind == ref.kind, assets.c.name == ref.name)
    if ref.scope is not None:
        stmt = stmt.where(assets.c.scope == ref.scope, assets.c.scope_id == ref.scopeName)
    return [asset_view(r) for r in await conn.execute(stmt)]


async def find_one(conn: AsyncConnection, ref: AssetRef) -> AssetView:
    found = await find(conn, ref)
    if not found:
        raise AssetError(f'{ref.kind} "{ref.name}" does not exist')
    if len(found) > 1:
        scopes = ", ".join(f"{a.scope} {a.scopeName}".strip() for a in found)
        raise AssetError(f'{ref.kind} "{ref.name}" exists in several scopes ({scopes}): give one')
    return found[0]


async def users_of(conn: AsyncConnection, view: AssetView) -> list[str]:
    """Who uses an asset: templates, data sources (of a credential), projects and workloads."""
    users: list[str] = []
    name = view.name
    if view.kind in ("environment", "compute", "datasource"):
        field = {"environment": "environment", "compute": "compute"}.get(view.kind)
        condition = (
            assets.c.spec["dataSources"].contains([name])
            if field is None
            else assets.c.spec[field].astext == name
        )
        rows = await conn.execute(
            select(assets.c.name).where(assets.c.kind == "template", condition)
        )
        users += [f"template {n}" for n in rows.scalars()]
    if view.kind == "credential":
        rows = await conn.execute(
            select(assets.c.name).where(
                assets.c.kind == "datasource", assets.c.spec["credential"].astext == name
            )
        )
        users += [f"datasource {n}" for n in rows.scalars()]
    if view.kind == "department":
        rows = await conn.execute(select(projects.c.name).where(projects.c.department == name))
        users += [f"project {n}" for n in rows.scalars()]
    if view.kind in ("department", "project"):
        rows = await conn.execute(
            select(assets.c.kind, assets.c.name).where(
                assets.c.scope == view.kind, assets.c.scope_id == name
            )
        )
        users += [f"{r.kind} {r.name}" for r in rows]
    workloads = await conn.execute(
        select(asset_usage.c.workload).where(asset_usage.c.asset_id == view.id)
    )
    users += [f"workload {w}" for w in workloads.scalars()]
    return sorted(users)


async def delete_asset(
    conn: AsyncConnection, ref: AssetRef, actor: Actor
) -> tuple[AssetView, CatalogAssetChangedV1]:
    view = await find_one(conn, ref)
    users = await users_of(conn, view)
    if users:
        raise AssetError(
            f'{view.kind} "{view.name}" is in use by {", ".join(users)}', used_by=users
        )
    if view.kind in ORGANISATION:
        table, _ = _ORG[view.kind]
        await conn.execute(delete(table).where(table.c.name == view.name))
    else:
        await conn.execute(delete(assets).where(assets.c.id == view.id))
    return view, changed(view, "deleted", actor)


async def list_assets(
    conn: AsyncConnection,
    kind: str | None,
    search: str | None,
    scopes: set[tuple[str, str]] | None,
) -> list[AssetView]:
    views: list[AssetView] = []
    for org_kind, (table, view) in _ORG.items():
        if kind not in (None, org_kind):
            continue
        stmt = select(table).order_by(table.c.name)
        if search:
            stmt = stmt.where(table.c.name.contains(search, autoescape=True))
        views += [view(r) for r in await conn.execute(stmt)]
    if kind is None or kind not in ORGANISATION:
        stmt = select(assets).order_by(assets.c.kind, assets.c.name)
        if kind:
            stmt = stmt.where(assets.c.kind == kind)
        if search:
            stmt = stmt.where(assets.c.name.contains(search, autoescape=True))
        if scopes is not None:
            stmt = stmt.where(
                or_(
                    *(
                        (assets.c.scope == scope) & (assets.c.scope_id == name)
                        for scope, name in sorted(scopes)
                    )
                )
            )
        views += [asset_view(r) for r in await conn.execute(stmt)]
    return views


async def record_usage(conn: AsyncConnection, rows: list[dict[str, str]]) -> None:
    if rows:
        await conn.execute(insert(asset_usage).on_conflict_do_nothing(), rows)


async def release_usage(conn: AsyncConnection, workload_ids: list[str]) -> None:
    if workload_ids:
        await conn.execute(delete(asset_usage).where(asset_usage.c.workload_id.in_(workload_ids)))
