"""``POST /api/v1/asset/...``: Run:ai's asset creation bodies, as the catalog's put query (the
same request as ``berth environment|compute|datasource|credential create``).

Run:ai's ``meta`` names the scope (``scope`` and the project, department or cluster id; names
are the ids in berth); its ``spec`` is the asset's. A data source's spec is already the workload
spec's storage item berth keeps; a credential's values are sealed to the catalog's key here, as
the CLI seals them, so they never cross the bus in clear."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from berth.api.auth import Caller, CallerDep
from berth.api.bus import Bus
from berth.api.catalog import Asset, asset
from berth.api.errors import BAD_REQUEST, ApiError, ErrorBody, forbidden
from berth.contracts.catalog import (
    AssetListReply,
    AssetListRequest,
    AssetPutRequest,
    AssetReply,
    CatalogKeyReply,
    CatalogKeyRequest,
    ScopeKind,
)
from berth.contracts.subjects import (
    RPC_CATALOG_ASSETS_LIST,
    RPC_CATALOG_ASSETS_PUT,
    RPC_CATALOG_KEYS_GET,
)
from berth.contracts.workload import WORKLOAD_KINDS
from berth.shared.keys import seal

CONFLICT: dict[int | str, dict[str, object]] = {
    409: {"model": ErrorBody, "description": "An asset of that name exists in the scope"}
}


class AssetCreationMeta(BaseModel):
    """Run:ai's ``AssetCreationRequest``."""

    name: str
    description: str | None = None
    scope: ScopeKind = "tenant"
    clusterId: str | None = None
    departmentId: str | None = None
    projectId: str | int | None = None
    autoDelete: bool | None = None
    workloadSupportedTypes: dict[str, Any] | None = None

    def scope_name(self) -> str:
        if self.scope == "tenant":
            return ""
        value = {
            "project": self.projectId,
            "department": self.departmentId,
            "cluster": self.clusterId,
        }[self.scope]
        if value in (None, ""):
            raise ApiError(400, "Required parameter is missing", f"meta: a {self.scope} scope "
                           f"needs meta.{self.scope}Id")  # fmt: skip
        return str(value)


class AssetCreation(BaseModel):
    """Run:ai's ``<Kind>CreationRequest``: ``meta`` and the asset's ``spec``."""

    model_config = ConfigDict(extra="forbid")

    meta: AssetCreationMeta
    spec: dict[str, Any] = Field(default_factory=dict)


# Run:ai's environment fields berth's environment keeps under the same name.
ENVIRONMENT_FIELDS = (
    "image", "imagePullPolicy", "command", "args", "workingDir", "environmentVariables",
    "runAsUid", "runAsGid",
)  # fmt: skip
# Run:ai's data source collections and berth's data source types.
DATASOURCES = {
    "pvc": "pvc",
    "nfs": "nfs",
    "git": "git",
    "s3": "s3",
    "host-path": "hostpath",
    "config-map": "configmap",
}
# A data source's credential, by asset id in Run:ai's spec.
CREDENTIAL_IDS = {"git": "passwordAssetId", "s3": "accessKeyAssetId"}
# Run:ai's credential spec fields, as the keys of berth's credential Secrets.
CREDENTIAL_VALUES: dict[str, dict[str, str]] = {
    "password": {"user": "User", "password": "Password"},
    "access-key": {"accessKeyId": "AccessKeyId", "secretAccessKey": "SecretKey"},
    "docker-registry": {"user": "User", "password": "Password", "url": "Url"},
}


def supported_types(meta: AssetCreationMeta) -> list[str] | None:
    """Run:ai's ``{"training": true, ...}`` as berth's list of kinds (all when unset)."""
    given = meta.workloadSupportedTypes
    if not given:
        return None
    return [kind for kind in WORKLOAD_KINDS if given.get(kind)]


def environment_spec(body: AssetCreation) -> dict[str, Any]:
    spec = dict(body.spec)
    out = {k: spec.pop(k) for k in ENVIRONMENT_FIELDS if k in spec}
    tools = []
    for connection in spec.pop("connections", None) or []:
        info = (connection or {}).get("internalToolInfo") or {}
        if not info.get("containerPort"):
            raise ApiError(400, "Bad request", "spec.connections: only internal tools (with "
                           "internalToolInfo.containerPort) are kept by berth")  # fmt: skip
        tools.append(
            {
                "name": connection.get("name") or info.get("toolType") or "tool",
                "toolType": info.get("toolType") or "custom",
                "containerPort": info["containerPort"],
            }
        )
    if tools:
        out["tools"] = tools
    kinds = supported_types(body.meta)
    if kinds is not None:
        out["workloadSupportedTypes"] = kinds
    # Whatever berth's environment does not keep is left in: the catalog names it.
    return {**out, **spec}


def credential_request(kind: str, body: AssetCreation) -> tuple[dict[str, Any], dict[str, str]]:
    """A credential's spec and its values (to be sealed)."""
    spec = dict(body.spec)
    if spec.pop("existingSecretName", None):
        raise ApiError(400, "Bad request", "spec.existingSecretName: berth creates the "
                       "credential's Secret itself; give the values")  # fmt: skip
    if kind == "generic-secret":
        pairs = spec.pop("keyValuePairs", None) or []
        values = {str(p.get("key")): str(p.get("value", "")) for p in pairs if p.get("key")}
        if spec:
            raise ApiError(400, "Bad request", f"spec: unknown fields {sorted(spec)}")
        return {"type": kind, "keys": sorted(values)}, values
    names = CREDENTIAL_VALUES[kind]
    unknown = sorted(set(spec) - set(names))
    if unknown:
        raise ApiError(400, "Bad request", f"spec: unknown fields {unknown}")
    values = {key: str(spec[field]) for field, key in names.items() if spec.get(field) is not None}
    return {"type": kind}, values


def router(bus: Bus) -> APIRouter:
    api = APIRouter(prefix="/api/v1/asset", tags=["assets, organisation, clusters"])

    async def put(
        caller: Caller,
        kind: str,
        body: AssetCreation,
        spec: dict[str, Any],
        values: dict[str, str] | None = None,
    ) -> AssetReply:
        request = AssetPutRequest(
            actor=caller.actor,
            kind=kind,  # type: ignore[arg-type]
            name=body.meta.name,
            scope=body.meta.scope,
            scopeName=body.meta.scope_name(),
            spec=spec,
        )
        if values:
            key = await bus.ask(
                RPC_CATALOG_KEYS_GET, CatalogKeyRequest(), CatalogKeyReply, caller.authorization
            )
            sealed = seal(key.key.publicKey, json.dumps(values).encode())
            request = request.model_copy(update={"sealedValues": sealed, "keyId": key.key.keyId})
        reply = await bus.ask(RPC_CATALOG_ASSETS_PUT, request, AssetReply, caller.authorization)
        if reply.error or reply.asset is None:
            error = reply.error or "the catalog created nothing"
            denial = forbidden([error])
            if denial is not None:
                raise ApiError(403, denial)
            if "already exists" in error:
                raise ApiError(409, "Conflict", error)
            raise ApiError(400, "Bad request", error)
        return reply

    async def credential_name(caller: Caller, key: str) -> str:
        reply = await bus.ask(
            RPC_CATALOG_ASSETS_LIST,
            AssetListRequest(kind="credential"),
            AssetListReply,
            caller.authorization,
        )
        found = next((a for a in reply.assets if key in (a.id, a.name)), None)
        if found is None:
            raise ApiError(400, "Bad request", f"no credential asset {key}")
        return found.name

    def route(
        path: str,
        collection: str,
        make: Callable[[Caller, AssetCreation], Any],
        summary: str,
    ) -> None:
        async def create(body: AssetCreation, caller: CallerDep) -> Asset:
            reply = await make(caller, body)
            assert reply.asset is not None
            return asset(reply.asset, collection)

        api.add_api_route(
            path,
            create,
            methods=["POST"],
            status_code=202,
            summary=summary,
            responses={**BAD_REQUEST, **CONFLICT},
            name=f"create_{path.strip('/').replace('/', '_').replace('-', '_')}_asset",
        )

    async def environment(caller: Caller, body: AssetCreation) -> AssetReply:
        return await put(caller, "environment", body, environment_spec(body))

    async def compute(caller: Caller, body: AssetCreation) -> AssetReply:
        return await put(caller, "compute", body, dict(body.spec))

    route("/environment", "environment", environment, "Create an environment.")
    route("/compute", "compute", compute, "Create a compute asset.")

    for collection, source_type in DATASOURCES.items():

        async def datasource(
            caller: Caller, body: AssetCreation, source_type: str = source_type
        ) -> AssetReply:
            volume = dict(body.spec)
            spec: dict[str, Any] = {"type": source_type}
            credential_id = volume.pop(CREDENTIAL_IDS.get(source_type, ""), None)
            if credential_id:
                spec["credential"] = await credential_name(caller, str(credential_id))
            return await put(caller, "datasource", body, {**spec, "volume": volume})

        route(
            f"/datasource/{collection}",
            "datasource",
            datasource,
            f"Create a {collection} data source.",
        )

    for collection in ("password", "access-key", "docker-registry", "generic-secret"):

        async def credential(
            caller: Caller, body: AssetCreation, kind: str = collection
        ) -> AssetReply:
            spec, values = credential_request(kind, body)
            return await put(caller, "credential", body, spec, values)

        route(
            f"/credentials/{collection}",
            "credentials",
            credential,
            f"Create a {collection} credential.",
        )

    return api
