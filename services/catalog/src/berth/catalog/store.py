"""The catalog's records: the store port the handlers and the asset rules use, and its
PostgreSQL adapter (Core statements over one connection).

Credential values are kept here only as ciphertext (``credentials.py`` encrypts and decrypts);
nothing here reads a value in clear except to encrypt what an older install stored so.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Table, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.catalog.tables import (
    access_rules,
    assets,
    cluster_keys,
    credential_values,
    departments,
    node_pools,
    projects,
)
from berth.contracts.access import AccessRule, OrgTree
from berth.contracts.catalog import AssetRef, AssetView, credential_secret_name
from berth.contracts.events import PublicKey
from berth.contracts.queries import ProjectInfo
from berth.shared.access import SqlAccessRules
from berth.shared.store import SqlStore

ORGANISATION = ("department", "project", "nodepool")


@dataclass(frozen=True)
class NewAsset:
    """An asset (not an organisation unit) to insert, its id chosen by the caller."""

    id: str
    kind: str
    name: str
    scope: str
    scope_name: str
    spec: dict[str, Any]
    status: str | None
    status_reason: str
    created_by: str


@dataclass(frozen=True)
class Ciphertext:
    key_id: str
    ciphertext: bytes


class CatalogStore(Protocol):
    """What handlers and asset rules read and write, inside one transaction."""

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested transaction: what it wrote is undone when its block raises."""

    # --- organisation

    async def org_exists(self, kind: str, name: str) -> bool: ...

    async def projects(self, names: Iterable[str]) -> dict[str, ProjectInfo]: ...

    async def project_in(self, namespace: str) -> ProjectInfo | None: ...

    async def insert_org(self, kind: str, row: dict[str, Any]) -> AssetView | None:
        """Insert an organisation unit (``row``: its columns); None when its name is taken."""

    async def update_org(self, kind: str, name: str, values: dict[str, Any]) -> AssetView | None:
        """None when there is no such unit."""

    # --- assets

    async def find(self, ref: AssetRef) -> list[AssetView]:
        """Every asset or unit of ``ref``'s kind and name (in its scope when it names one)."""

    async def insert_asset(self, asset: NewAsset) -> AssetView | None:
        """None when the kind, scope and name are taken."""

    async def update_asset(
        self,
        asset: AssetRef,
        spec: dict[str, Any],
        status: str | None,
        status_reason: str,
    ) -> AssetView | None:
        """Replace the spec (and the status, unless None); None when there is no such asset."""

    async def delete(self, view: AssetView) -> None: ...

    async def users_of(self, view: AssetView) -> list[str]:
        """What in the catalog uses an asset: templates, data sources (of a credential),
        projects and assets in its scope, as ``kind name``, sorted. Workloads are intake's to
        say (``assets.users_of``)."""

    async def list_assets(
        self, kind: str | None, search: str | None, scopes: set[tuple[str, str]] | None
    ) -> list[AssetView]:
        """Organisation units by name, then assets by kind and name (those of ``scopes`` only,
        when given); names containing ``search``."""

    # --- credential values and keys

    async def save_values(self, asset_id: str, value: Ciphertext) -> None: ...

    async def values_of(self, asset_id: str) -> Ciphertext | None: ...

    async def legacy_values(self) -> dict[str, dict[str, str]]:
        """Values an older install stored in clear, by asset id (locked until the commit)."""

    async def values_not_under(self, key_id: str) -> list[str]:
        """Assets whose values are encrypted with another key (locked until the commit)."""

    async def cluster_key(self, cluster_id: str) -> PublicKey | None: ...

    async def record_cluster_key(self, cluster_id: str, key: PublicKey) -> None:
        """Keep the key a cluster's agent seals to, unless a newer one is on record."""

    # --- access rules (the catalog owns them; see ``berth.shared.access.AccessRules``)

    async def org_tree(self) -> OrgTree:
        """Every project's department and cluster, every department's cluster."""

    async def record_created(self, rules: Sequence[AccessRule]) -> None: ...

    async def record_deleted(self, rules: Sequence[AccessRule]) -> None: ...

    async def access_rules(self) -> list[AccessRule]: ...

    async def all_access_rules(self) -> list[AccessRule]: ...


Reader = Callable[[], AbstractAsyncContextManager[CatalogStore]]
"""Opens a store for reading (queries that change nothing)."""


# --- rows to views ---------------------------------------------------------------------------


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


def project_info(row: Any) -> ProjectInfo:
    return ProjectInfo(
        name=row.name,
        department=row.department,
        clusterId=row.cluster_id,
        namespace=row.namespace,
        queue=row.queue,
        defaultNodePools=list(row.default_node_pools),
    )


ORG_VIEWS: dict[str, Callable[[Any], AssetView]] = {
    "department": department_view,
    "project": project_view,
    "nodepool": nodepool_view,
}

_ORG_TABLES: dict[str, Table] = {
    "department": departments,
    "project": projects,
    "nodepool": node_pools,
}


# --- PostgreSQL ------------------------------------------------------------------------------


class SqlCatalogStore(SqlStore):
    """The catalog store in PostgreSQL, on one connection (one transaction)."""

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        async with self._conn.begin_nested():
            yield

    async def org_exists(self, kind: str, name: str) -> bool:
        table = _ORG_TABLES[kind]
        return await self._conn.scalar(select(table.c.name).where(table.c.name == name)) is not None

    async def projects(self, names: Iterable[str]) -> dict[str, ProjectInfo]:
        wanted = sorted(set(names))
        if not wanted:
            return {}
        rows = await self._conn.execute(select(projects).where(projects.c.name.in_(wanted)))
        return {r.name: project_info(r) for r in rows}

    async def project_in(self, namespace: str) -> ProjectInfo | None:
        row = (
            await self._conn.execute(select(projects).where(projects.c.namespace == namespace))
        ).first()
        return None if row is None else project_info(row)

    async def insert_org(self, kind: str, row: dict[str, Any]) -> AssetView | None:
        table = _ORG_TABLES[kind]
        stmt = insert(table).values(row).on_conflict_do_nothing().returning(table)
        result = (await self._conn.execute(stmt)).first()
        return None if result is None else ORG_VIEWS[kind](result)

    async def update_org(self, kind: str, name: str, values: dict[str, Any]) -> AssetView | None:
        table = _ORG_TABLES[kind]
        stmt = update(table).where(table.c.name == name).values(**values).returning(table)
        result = (await self._conn.execute(stmt)).first()
        return None if result is None else ORG_VIEWS[kind](result)

    async def find(self, ref: AssetRef) -> list[AssetView]:
        if ref.kind in ORGANISATION:
            table = _ORG_TABLES[ref.kind]
            rows = await self._conn.execute(select(table).where(table.c.name == ref.name))
            return [ORG_VIEWS[ref.kind](r) for r in rows]
        stmt = select(assets).where(assets.c.kind == ref.kind, assets.c.name == ref.name)
        if ref.scope is not None:
            stmt = stmt.where(assets.c.scope == ref.scope, assets.c.scope_id == ref.scopeName)
        return [asset_view(r) for r in await self._conn.execute(stmt)]

    async def insert_asset(self, asset: NewAsset) -> AssetView | None:
        stmt = (
            insert(assets)
            .values(
                id=asset.id,
                kind=asset.kind,
                name=asset.name,
                scope=asset.scope,
                scope_id=asset.scope_name,
                spec=asset.spec,
                status=asset.status,
                status_reason=asset.status_reason,
                created_by=asset.created_by,
            )
            .on_conflict_do_nothing()
            .returning(assets)
        )
        row = (await self._conn.execute(stmt)).first()
        return None if row is None else asset_view(row)

    async def update_asset(
        self,
        asset: AssetRef,
        spec: dict[str, Any],
        status: str | None,
        status_reason: str,
    ) -> AssetView | None:
        values: dict[str, Any] = {"spec": spec, "updated_at": func.now()}
        if status is not None:
            values.update(status=status, status_reason=status_reason)
        stmt = (
            update(assets)
            .where(
                assets.c.kind == asset.kind,
                assets.c.scope == asset.scope,
                assets.c.scope_id == asset.scopeName,
                assets.c.name == asset.name,
            )
            .values(values)
            .returning(assets)
        )
        row = (await self._conn.execute(stmt)).first()
        return None if row is None else asset_view(row)

    async def delete(self, view: AssetView) -> None:
        if view.kind in ORGANISATION:
            table = _ORG_TABLES[view.kind]
            await self._conn.execute(delete(table).where(table.c.name == view.name))
        else:
            await self._conn.execute(delete(assets).where(assets.c.id == view.id))

    async def users_of(self, view: AssetView) -> list[str]:
        conn, users, name = self._conn, [], view.name
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
            scoped = await conn.execute(
                select(assets.c.kind, assets.c.name).where(
                    assets.c.scope == view.kind, assets.c.scope_id == name
                )
            )
            users += [f"{r.kind} {r.name}" for r in scoped]
        return sorted(users)

    async def list_assets(
        self, kind: str | None, search: str | None, scopes: set[tuple[str, str]] | None
    ) -> list[AssetView]:
        views: list[AssetView] = []
        for org_kind, table in _ORG_TABLES.items():
            if kind not in (None, org_kind):
                continue
            stmt = select(table).order_by(table.c.name)
            if search:
                stmt = stmt.where(table.c.name.contains(search, autoescape=True))
            views += [ORG_VIEWS[org_kind](r) for r in await self._conn.execute(stmt)]
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
            views += [asset_view(r) for r in await self._conn.execute(stmt)]
        return views

    async def save_values(self, asset_id: str, value: Ciphertext) -> None:
        row = {"key_id": value.key_id, "ciphertext": value.ciphertext, "legacy_values": None}
        await self._conn.execute(
            insert(credential_values)
            .values(asset_id=asset_id, **row)
            .on_conflict_do_update(
                index_elements=[credential_values.c.asset_id],
                set_={**row, "updated_at": func.now()},
            )
        )

    async def values_of(self, asset_id: str) -> Ciphertext | None:
        row = (
            await self._conn.execute(
                select(credential_values.c.key_id, credential_values.c.ciphertext).where(
                    credential_values.c.asset_id == asset_id,
                    credential_values.c.ciphertext.is_not(None),
                )
            )
        ).first()
        return None if row is None else Ciphertext(row.key_id, row.ciphertext)

    async def legacy_values(self) -> dict[str, dict[str, str]]:
        rows = await self._conn.execute(
            select(credential_values.c.asset_id, credential_values.c.legacy_values)
            .where(credential_values.c.legacy_values.is_not(None))
            .with_for_update()
        )
        return {r.asset_id: dict(r.legacy_values) for r in rows}

    async def values_not_under(self, key_id: str) -> list[str]:
        rows = await self._conn.execute(
            select(credential_values.c.asset_id)
            .where(
                credential_values.c.ciphertext.is_not(None),
                credential_values.c.key_id != key_id,
            )
            .with_for_update()
        )
        return list(rows.scalars())

    async def cluster_key(self, cluster_id: str) -> PublicKey | None:
        row = (
            await self._conn.execute(
                select(cluster_keys).where(cluster_keys.c.cluster_id == cluster_id)
            )
        ).first()
        return None if row is None else PublicKey(keyId=row.key_id, publicKey=row.public_key)

    async def record_cluster_key(self, cluster_id: str, key: PublicKey) -> None:
        stmt = insert(cluster_keys).values(
            cluster_id=cluster_id, key_id=key.keyId, public_key=key.publicKey
        )
        await self._conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[cluster_keys.c.cluster_id],
                set_={
                    "key_id": stmt.excluded.key_id,
                    "public_key": stmt.excluded.public_key,
                    "updated_at": func.now(),
                },
                # Key ids sort by creation time: a report replayed or redelivered late does not
                # bring back a key the agent has since replaced (an agent that lost its newest
                # key recovers by rotating to a newer one).
                where=cluster_keys.c.key_id <= stmt.excluded.key_id,
            )
        )

    async def org_tree(self) -> OrgTree:
        deps = await self._conn.execute(select(departments.c.name, departments.c.cluster_id))
        projs = await self._conn.execute(
            select(projects.c.name, projects.c.department, projects.c.cluster_id)
        )
        return OrgTree(
            projects={r.name: (r.department, r.cluster_id) for r in projs},
            departments={r.name: r.cluster_id for r in deps},
        )

    @property
    def _rules(self) -> SqlAccessRules:
        return SqlAccessRules(self._conn, access_rules)

    async def record_created(self, rules: Sequence[AccessRule]) -> None:
        await self._rules.record_created(rules)

    async def record_deleted(self, rules: Sequence[AccessRule]) -> None:
        await self._rules.record_deleted(rules)

    async def access_rules(self) -> list[AccessRule]:
        return await self._rules.access_rules()

    async def all_access_rules(self) -> list[AccessRule]:
        return await self._rules.all_access_rules()


def reader(engine: AsyncEngine) -> Reader:
    """Read-only stores on connections of ``engine``."""

    @contextlib.asynccontextmanager
    async def read() -> AsyncIterator[CatalogStore]:
        async with engine.connect() as conn:
            yield SqlCatalogStore(conn)

    return read
