"""Run:ai's asset, organisation and cluster reads, as the catalog's and intake's queries (the
same as ``berth environment|compute|...|project list`` and ``berth cluster list``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from berth.api.auth import Caller, CallerDep
from berth.api.bus import Bus
from berth.api.errors import NOT_FOUND, RESPONSES, ApiError
from berth.contracts.catalog import AssetListReply, AssetListRequest, AssetView
from berth.contracts.queries import ClusterListQuery, ClusterListReply
from berth.contracts.subjects import RPC_CATALOG_ASSETS_LIST, RPC_CLUSTERS_LIST

# Run:ai's asset collections (/api/v1/asset/<collection>) and the catalog's kind of each.
ASSETS: dict[str, str] = {
    "environment": "environment",
    "compute": "compute",
    "datasource": "datasource",
    "credentials": "credential",
    "workload-template": "template",
}


class AssetMeta(BaseModel):
    id: str
    name: str
    kind: str
    scope: str
    projectId: str | None = None
    departmentId: str | None = None
    clusterId: str | None = None
    createdBy: str = ""


class Asset(BaseModel):
    """Run:ai's ``<Kind>Asset``: ``meta`` and the asset's own ``spec``."""

    meta: AssetMeta
    spec: dict[str, Any] = Field(default_factory=dict)
    status: str | None = Field(default=None, description="A data source's cluster status.")


class AssetList(BaseModel):
    entries: list[Asset]


class OrgUnit(BaseModel):
    """Run:ai's ``Project`` / ``Department`` as the catalog keeps them (names are the ids)."""

    id: str
    name: str
    parentId: str | None = None
    clusterId: str | None = None
    requestedNamespace: str | None = None
    defaultNodePools: list[str] = Field(default_factory=list)
    resources: list[dict[str, Any]] = Field(
        default_factory=list, description="Quota per node pool: gpu, cpu, memory."
    )


class ProjectList(BaseModel):
    projects: list[OrgUnit]


class DepartmentList(BaseModel):
    departments: list[OrgUnit]


class Cluster(BaseModel):
    """Run:ai's ``DisplayedCluster``, from intake's registry of reported clusters."""

    uuid: str
    name: str
    status: dict[str, Any] = Field(default_factory=dict)
    lastLiveness: str | None = None
    version: str | None = None
    nodePools: list[str] = Field(default_factory=list)
    gpus: int = 0


class NodePool(BaseModel):
    name: str
    id: str
    labelKey: str | None = None
    labelValue: str | None = None
    placementStrategy: dict[str, str] = Field(default_factory=dict)


def asset(view: AssetView, kind: str) -> Asset:
    scope_ids = {f"{view.scope}Id": view.scopeName} if view.scope != "tenant" else {}
    return Asset(
        meta=AssetMeta(
            id=view.id,
            name=view.name,
            kind=kind,
            scope=view.scope,
            createdBy=view.createdBy,
            **scope_ids,
        ),
        spec=view.spec,
        status=view.status,
    )


def org_unit(view: AssetView) -> OrgUnit:
    spec = view.spec
    return OrgUnit(
        id=view.name,
        name=view.name,
        parentId=spec.get("department"),
        clusterId=spec.get("clusterId"),
        requestedNamespace=spec.get("namespace"),
        defaultNodePools=spec.get("defaultNodePools") or [],
        resources=spec.get("quota") or [],
    )


def router(bus: Bus) -> APIRouter:
    api = APIRouter(tags=["assets, organisation, clusters"], responses=RESPONSES)

    async def listed(caller: Caller, kind: str, project: str | None = None) -> list[AssetView]:
        reply = await bus.ask(
            RPC_CATALOG_ASSETS_LIST,
            AssetListRequest(kind=kind, project=project),  # type: ignore[arg-type]
            AssetListReply,
            caller.authorization,
        )
        return list(reply.assets)

    def one(views: list[AssetView], key: str) -> AssetView:
        found = next((v for v in views if key in (v.id, v.name)), None)
        if found is None:
            raise ApiError(404, "Resource id not found.", f"no {key}")
        return found

    for collection, kind in ASSETS.items():
        _asset_routes(api, listed, one, collection, kind)

    @api.get("/api/v1/org-unit/projects", summary="List projects.")
    async def projects(caller: CallerDep) -> ProjectList:
        return ProjectList(projects=[org_unit(v) for v in await listed(caller, "project")])

    @api.get("/api/v1/org-unit/projects/{projectId}", summary="Get a project.", responses=NOT_FOUND)
    async def project(projectId: str, caller: CallerDep) -> OrgUnit:
        return org_unit(one(await listed(caller, "project"), projectId))

    @api.get("/api/v1/org-unit/departments", summary="List departments.")
    async def departments(caller: CallerDep) -> DepartmentList:
        return DepartmentList(departments=[org_unit(v) for v in await listed(caller, "department")])

    @api.get(
        "/api/v1/org-unit/departments/{departmentId}",
        summary="Get a department.",
        responses=NOT_FOUND,
    )
    async def department(departmentId: str, caller: CallerDep) -> OrgUnit:
        return org_unit(one(await listed(caller, "department"), departmentId))

    async def registered(caller: Caller) -> list[Cluster]:
        reply = await bus.ask(
            RPC_CLUSTERS_LIST, ClusterListQuery(), ClusterListReply, caller.authorization
        )
        return [
            Cluster(
                uuid=c.clusterId,
                name=c.clusterId,
                status={"state": "Connected", "backend": c.backend},
                lastLiveness=c.reportedAt.isoformat(),
                version=c.config.clusterVersion or None,
                nodePools=c.nodePools,
                gpus=c.gpus,
            )
            for c in reply.clusters
        ]

    @api.get("/api/v1/clusters", summary="List clusters.")
    async def clusters(caller: CallerDep) -> list[Cluster]:
        return await registered(caller)

    @api.get("/api/v1/clusters/{clusterUuid}", summary="Get a cluster.", responses=NOT_FOUND)
    async def cluster(clusterUuid: str, caller: CallerDep) -> Cluster:
        found = next((c for c in await registered(caller) if c.uuid == clusterUuid), None)
        if found is None:
            raise ApiError(404, "Resource id not found.", f"no cluster {clusterUuid}")
        return found

    @api.get("/v1/k8s/clusters/{clusterId}/node-pools", summary="List a cluster's node pools.")
    async def node_pools(clusterId: str, caller: CallerDep) -> list[NodePool]:
        del clusterId  # node pools are kept for the whole installation
        return [
            NodePool(
                name=v.name,
                id=v.id,
                labelKey=v.spec.get("labelKey"),
                labelValue=v.spec.get("labelValue"),
                placementStrategy={"gpu": str(v.spec.get("placement") or "binpack")},
            )
            for v in await listed(caller, "nodepool")
        ]

    return api


def _asset_routes(api: APIRouter, listed: Any, one: Any, collection: str, kind: str) -> None:
    async def list_assets(caller: CallerDep, projectId: str | None = None) -> AssetList:
        return AssetList(
            entries=[asset(v, collection) for v in await listed(caller, kind, projectId)]
        )

    async def get_asset(AssetId: str, caller: CallerDep) -> Asset:
        return asset(one(await listed(caller, kind), AssetId), collection)

    path = f"/api/v1/asset/{collection}"
    api.add_api_route(
        path,
        list_assets,
        methods=["GET"],
        summary=f"List {collection} assets.",
        name=f"list_{kind}_assets",
    )
    api.add_api_route(
        f"{path}/{{AssetId}}",
        get_asset,
        methods=["GET"],
        summary=f"Get a {collection} asset.",
        responses=NOT_FOUND,
        name=f"get_{kind}_asset",
    )
