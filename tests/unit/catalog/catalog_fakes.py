"""The catalog store in memory, for handler tests: same port as the PostgreSQL store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from berth.catalog.store import (
    ORG_VIEWS,
    ORGANISATION,
    Ciphertext,
    NewAsset,
    asset_view,
    project_info,
)
from berth.contracts.access import AccessRule, OrgTree
from berth.contracts.catalog import AssetRef, AssetView
from berth.contracts.events import PublicKey
from berth.contracts.queries import ProjectInfo
from berth.shared.access import InMemoryAccessRules
from berth.shared.testing import InMemoryTable
from tests.unit.access_builders import admin_rule

# Column defaults of the organisation tables, as the schema has them.
_ORG_DEFAULTS: dict[str, dict[str, Any]] = {
    "department": {"quota": []},
    "project": {"department": None, "default_node_pools": [], "quota": []},
    "nodepool": {"placement": "binpack", "node_types": []},
}


def _row(asset: NewAsset) -> SimpleNamespace:
    return SimpleNamespace(
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


class InMemoryCatalogStore:
    """``rules``: the access rules it starts with (an administrator, admin@example.com, when
    not given)."""

    def __init__(self, rules: Sequence[AccessRule] | None = None) -> None:
        self.rules = InMemoryAccessRules([admin_rule()] if rules is None else rules)
        # Organisation units by (kind, name), as their columns; assets by id.
        self.org: InMemoryTable[tuple[str, str], tuple[tuple[str, Any], ...]] = InMemoryTable()
        self.assets: InMemoryTable[str, NewAsset] = InMemoryTable()
        self.values: InMemoryTable[str, Ciphertext] = InMemoryTable()
        self.legacy: InMemoryTable[str, tuple[tuple[str, str], ...]] = InMemoryTable()
        self.cluster_keys: InMemoryTable[str, PublicKey] = InMemoryTable()

    # --- helpers

    def _org_rows(self, kind: str) -> list[SimpleNamespace]:
        return sorted(
            (SimpleNamespace(**dict(r)) for (k, _), r in self.org.rows.items() if k == kind),
            key=lambda r: r.name,
        )

    def _org_row(self, kind: str, name: str) -> SimpleNamespace | None:
        row = self.org.get((kind, name))
        return None if row is None else SimpleNamespace(**dict(row))

    # --- the port

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        saved = self.snapshot()
        try:
            yield
        except BaseException:
            self.restore(saved)
            raise

    async def org_exists(self, kind: str, name: str) -> bool:
        return self.org.get((kind, name)) is not None

    async def projects(self, names: Iterable[str]) -> dict[str, ProjectInfo]:
        return {n: project_info(row) for n in set(names) if (row := self._org_row("project", n))}

    async def project_in(self, namespace: str) -> ProjectInfo | None:
        found = [r for r in self._org_rows("project") if r.namespace == namespace]
        return project_info(found[0]) if found else None

    async def insert_org(self, kind: str, row: dict[str, Any]) -> AssetView | None:
        if kind == "project" and any(
            r.namespace == row["namespace"] for r in self._org_rows("project")
        ):
            raise ValueError(f"unique violation: namespace {row['namespace']}")
        full = {**_ORG_DEFAULTS[kind], **row}
        if not self.org.insert_new((kind, row["name"]), tuple(sorted(full.items()))):
            return None
        return ORG_VIEWS[kind](SimpleNamespace(**full))

    async def update_org(self, kind: str, name: str, values: dict[str, Any]) -> AssetView | None:
        old = self.org.get((kind, name))
        if old is None:
            return None
        full = {**dict(old), **values}
        self.org.put((kind, name), tuple(sorted(full.items())))
        return ORG_VIEWS[kind](SimpleNamespace(**full))

    async def find(self, ref: AssetRef) -> list[AssetView]:
        if ref.kind in ORGANISATION:
            row = self._org_row(ref.kind, ref.name)
            return [] if row is None else [ORG_VIEWS[ref.kind](row)]
        return [
            asset_view(_row(a))
            for a in self.assets
            if a.kind == ref.kind
            and a.name == ref.name
            and (ref.scope is None or (a.scope, a.scope_name) == (ref.scope, ref.scopeName))
        ]

    async def insert_asset(self, asset: NewAsset) -> AssetView | None:
        taken = any(
            (a.kind, a.scope, a.scope_name, a.name)
            == (asset.kind, asset.scope, asset.scope_name, asset.name)
            for a in self.assets
        )
        if taken or not self.assets.insert_new(asset.id, asset):
            return None
        return asset_view(_row(asset))

    async def update_asset(
        self,
        asset: AssetRef,
        spec: dict[str, Any],
        status: str | None,
        status_reason: str,
    ) -> AssetView | None:
        for a in self.assets:
            if (a.kind, a.scope, a.scope_name, a.name) == (
                asset.kind,
                asset.scope,
                asset.scopeName,
                asset.name,
            ):
                new = replace(a, spec=spec)
                if status is not None:
                    new = replace(new, status=status, status_reason=status_reason)
                self.assets.put(a.id, new)
                return asset_view(_row(new))
        return None

    async def delete(self, view: AssetView) -> None:
        if view.kind in ORGANISATION:
            self.org.delete((view.kind, view.name))
            return
        self.assets.delete(view.id)
        self.values.delete(view.id)  # ON DELETE CASCADE

    async def users_of(self, view: AssetView) -> list[str]:
        users: list[str] = []
        name = view.name
        templates = [a for a in self.assets if a.kind == "template"]
        if view.kind in ("environment", "compute"):
            users += [f"template {t.name}" for t in templates if t.spec.get(view.kind) == name]
        if view.kind == "datasource":
            users += [
                f"template {t.name}" for t in templates if name in t.spec.get("dataSources", [])
            ]
        if view.kind == "credential":
            users += [
                f"datasource {a.name}"
                for a in self.assets
                if a.kind == "datasource" and a.spec.get("credential") == name
            ]
        if view.kind == "department":
            users += [
                f"project {p.name}" for p in self._org_rows("project") if p.department == name
            ]
        if view.kind in ("department", "project"):
            users += [
                f"{a.kind} {a.name}"
                for a in self.assets
                if a.scope == view.kind and a.scope_name == name
            ]
        return sorted(users)

    async def list_assets(
        self, kind: str | None, search: str | None, scopes: set[tuple[str, str]] | None
    ) -> list[AssetView]:
        views: list[AssetView] = []
        for org_kind in ("department", "project", "nodepool"):
            if kind in (None, org_kind):
                views += [
                    ORG_VIEWS[org_kind](r)
                    for r in self._org_rows(org_kind)
                    if not search or search in r.name
                ]
        if kind is None or kind not in ORGANISATION:
            views += [
                asset_view(_row(a))
                for a in sorted(self.assets, key=lambda a: (a.kind, a.name))
                if (not kind or a.kind == kind)
                and (not search or search in a.name)
                and (scopes is None or (a.scope, a.scope_name) in scopes)
            ]
        return views

    async def save_values(self, asset_id: str, value: Ciphertext) -> None:
        self.values.put(asset_id, value)
        self.legacy.delete(asset_id)

    async def values_of(self, asset_id: str) -> Ciphertext | None:
        return self.values.get(asset_id)

    async def legacy_values(self) -> dict[str, dict[str, str]]:
        return {k: dict(v) for k, v in self.legacy.rows.items()}

    async def values_not_under(self, key_id: str) -> list[str]:
        return [k for k, v in self.values.rows.items() if v.key_id != key_id]

    async def cluster_key(self, cluster_id: str) -> PublicKey | None:
        return self.cluster_keys.get(cluster_id)

    async def record_cluster_key(self, cluster_id: str, key: PublicKey) -> None:
        old = self.cluster_keys.get(cluster_id)
        if old is None or old.keyId <= key.keyId:
            self.cluster_keys.put(cluster_id, key)

    async def org_tree(self) -> OrgTree:
        return OrgTree(
            projects={r.name: (r.department, r.cluster_id) for r in self._org_rows("project")},
            departments={r.name: r.cluster_id for r in self._org_rows("department")},
        )

    async def record_created(self, rules: Sequence[AccessRule]) -> None:
        await self.rules.record_created(rules)

    async def record_deleted(self, rules: Sequence[AccessRule]) -> None:
        await self.rules.record_deleted(rules)

    async def access_rules(self) -> list[AccessRule]:
        return await self.rules.access_rules()

    async def all_access_rules(self) -> list[AccessRule]:
        return await self.rules.all_access_rules()

    def snapshot(self) -> Any:
        tables = (
            self.org,
            self.assets,
            self.values,
            self.legacy,
            self.cluster_keys,
            self.rules,
        )
        return tuple(t.snapshot() for t in tables)

    def restore(self, snapshot: Any) -> None:
        tables = (
            self.org,
            self.assets,
            self.values,
            self.legacy,
            self.cluster_keys,
            self.rules,
        )
        for table, saved in zip(tables, snapshot, strict=True):
            table.restore(saved)  # type: ignore[attr-defined]


class WorkloadsInUse:
    """Intake's answer to which workloads use an asset, as the catalog's handlers ask it:
    ``users`` per asset id, or ``failure`` raised when intake does not answer."""

    def __init__(self) -> None:
        self.users: dict[str, list[str]] = {}
        self.failure: Exception | None = None
        self.asked: list[list[str]] = []

    async def __call__(self, asset_ids: Sequence[str]) -> dict[str, list[str]]:
        self.asked.append(list(asset_ids))
        if self.failure is not None:
            raise self.failure
        return {i: self.users[i] for i in asset_ids if self.users.get(i)}
