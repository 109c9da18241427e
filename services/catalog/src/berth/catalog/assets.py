"""The catalog's rules for organisation units and assets: what a create, update or delete may
do, decided over typed data; every read and write goes through the store port
(``store.CatalogStore``).

Every write returns the ``CatalogAssetChangedV1`` event it caused; the caller emits it in the
same transaction. Credential values are stored encrypted (``credentials.py``) and never read
back here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from berth.catalog import credentials
from berth.catalog.keys import KeyProvider
from berth.catalog.store import ORGANISATION, CatalogStore, NewAsset
from berth.catalog.usage import WorkloadUsers
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
from berth.shared.errors import BerthError

SOURCE = "/berth/catalog"


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


async def _put_org(db: CatalogStore, put: Put, cluster_id: str) -> AssetView:
    row = _org_row(put.kind, put.name, put.spec, cluster_id)
    if (
        put.kind == "project"
        and row["department"]
        and not await db.org_exists("department", row["department"])
    ):
        raise AssetError(f'department "{row["department"]}" does not exist')
    if put.update:
        updated = await db.update_org(
            put.kind, put.name, {k: v for k, v in row.items() if k != "name"}
        )
        if updated is None:
            raise AssetError(f'{put.kind} "{put.name}" does not exist')
        return updated
    if put.kind == "project":
        taken = await db.project_in(row["namespace"])
        if taken is not None:
            raise AssetError(f'namespace "{row["namespace"]}" is taken by project "{taken.name}"')
    created = await db.insert_org(put.kind, row)
    if created is None:
        raise AssetError(f'{put.kind} "{put.name}" already exists')
    return created


# --- assets ----------------------------------------------------------------------------------


async def _check_scope(db: CatalogStore, scope: str, scope_name: str) -> None:
    if scope == "tenant":
        if scope_name:
            raise AssetError("the tenant scope takes no scope name")
        return
    if not scope_name:
        raise AssetError(f"a {scope} scope needs a name")
    if scope in ("department", "project") and not await db.org_exists(scope, scope_name):
        raise AssetError(f'{scope} "{scope_name}" does not exist')


async def _exists(db: CatalogStore, kind: str, name: str) -> list[AssetView]:
    return await db.find(AssetRef.model_validate({"kind": kind, "name": name}))


async def scopes_seen_from(
    db: CatalogStore, scope: str, scope_name: str, cluster_id: str
) -> set[tuple[str, str]]:
    """The scopes whose assets an asset of ``scope`` may use: itself and its ancestors."""
    if scope == "tenant":
        return {("tenant", "")}
    if scope == "cluster":
        return {("tenant", ""), ("cluster", scope_name)}
    if scope == "department":
        return {("tenant", ""), ("cluster", cluster_id), ("department", scope_name)}
    row = (await db.projects([scope_name])).get(scope_name)
    department, cluster = (row.department, row.clusterId) if row else (None, cluster_id)
    return project_scopes(scope_name, department, cluster)


async def _check_references(
    db: CatalogStore, put: Put, spec: dict[str, Any], cluster_id: str
) -> None:
    """Referenced assets must exist, and a template's must be visible from its scope (else
    every workload built from it would be refused); a data source's credential must be of the
    right type."""
    wanted: list[tuple[str, str]] = []
    if put.kind == "template":
        wanted += [("environment", spec["environment"])] if spec.get("environment") else []
        wanted += [("compute", spec["compute"])] if spec.get("compute") else []
        wanted += [("datasource", n) for n in spec.get("dataSources", [])]
    seen = await scopes_seen_from(db, put.scope, put.scope_name, cluster_id) if wanted else set()
    for kind, name in wanted:
        found = await _exists(db, kind, name)
        if not found:
            raise AssetError(f'{kind} "{name}" does not exist')
        if not any(visible_to(view, seen) for view in found):
            where = ", ".join(sorted({f"{v.scope} {v.scopeName}".strip() for v in found}))
            raise AssetError(
                f'{kind} "{name}" is not visible from {_scope_text(put)}: it belongs to {where}'
            )
    if put.kind == "datasource" and spec.get("credential"):
        needed = DATASOURCE_CREDENTIAL[spec["type"]]
        found = await _exists(db, "credential", spec["credential"])
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
    db: CatalogStore,
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
        view = await _put_org(db, replace(put, spec=spec), cluster_id)
        return view, changed(view, "updated" if put.update else "created", actor)
    await _check_scope(db, put.scope, put.scope_name)
    await _check_references(db, put, spec, cluster_id)
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
    if put.update:
        ref = AssetRef.model_validate(
            {"kind": put.kind, "name": put.name, "scope": put.scope, "scopeName": put.scope_name}
        )
        updated = await db.update_asset(ref, spec, status, put.status_reason)
        if updated is None:
            raise AssetError(f'{put.kind} "{put.name}" does not exist in {_scope_text(put)}')
        view = updated
    else:
        created = await db.insert_asset(
            NewAsset(
                id=f"{put.kind}-{uuid.uuid4().hex[:12]}",
                kind=put.kind,
                name=put.name,
                scope=put.scope,
                scope_name=put.scope_name,
                spec=spec,
                status=status,
                status_reason=put.status_reason,
                created_by=actor.email,
            )
        )
        if created is None:
            raise AssetError(f'{put.kind} "{put.name}" already exists in {_scope_text(put)}')
        view = created
    if put.kind == "credential" and secret_values:
        if keys is None:
            raise AssetError("credential values cannot be stored here: no key provider")
        await credentials.store(db, keys, view.id, secret_values)
    return view, changed(view, "updated" if put.update else "created", actor)


def _scope_text(put: Put) -> str:
    return "the tenant" if put.scope == "tenant" else f'{put.scope} "{put.scope_name}"'


async def find_one(db: CatalogStore, ref: AssetRef) -> AssetView:
    found = await db.find(ref)
    if not found:
        raise AssetError(f'{ref.kind} "{ref.name}" does not exist')
    if len(found) > 1:
        scopes = ", ".join(f"{a.scope} {a.scopeName}".strip() for a in found)
        raise AssetError(f'{ref.kind} "{ref.name}" exists in several scopes ({scopes}): give one')
    return found[0]


async def users_of(db: CatalogStore, view: AssetView, workloads: WorkloadUsers) -> list[str]:
    """Everything that uses an asset, as ``kind name``, sorted: what the catalog itself holds
    (templates, data sources, projects, scoped assets) and the live workloads intake says were
    built from it. Raises ``AssetError`` when intake cannot say: nobody can tell then."""
    try:
        used = await workloads([view.id])
    except BerthError as exc:
        raise AssetError(
            f'cannot tell which workloads use {view.kind} "{view.name}": {exc}'
        ) from None
    return sorted([*await db.users_of(view), *(f"workload {w}" for w in used.get(view.id, ()))])


async def delete_asset(
    db: CatalogStore, ref: AssetRef, actor: Actor, workloads: WorkloadUsers
) -> tuple[AssetView, CatalogAssetChangedV1]:
    view = await find_one(db, ref)
    users = await users_of(db, view, workloads)
    if users:
        raise AssetError(
            f'{view.kind} "{view.name}" is in use by {", ".join(users)}', used_by=users
        )
    await db.delete(view)
    return view, changed(view, "deleted", actor)
