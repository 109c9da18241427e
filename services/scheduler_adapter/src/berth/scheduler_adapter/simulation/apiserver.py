"""The simulated cluster as a process of its own: a Kubernetes API server, the subset berth
uses, in front of the simulation (``simulation.cluster``).

The scheduler-adapter reaches it exactly as it reaches a real cluster, with kubernetes-asyncio
and a kubeconfig; nothing on the adapter's side knows it is simulated. What it serves:

- REST paths of the core and grouped APIs, namespaced and cluster-wide: GET, LIST (label
  selectors), WATCH (resource versions, bookmarks, ``410 Gone`` for a version older than the
  event log keeps), POST, PUT, server-side apply (``application/apply-patch+yaml``: the applied
  fields are merged over the object, one field manager in practice), JSON merge patch,
  ``status`` subresources, DELETE with ``propagationPolicy`` (owner references), a pod's
  ``log`` subresource (with ``follow`` and ``tailLines``), API discovery of the groups it serves.
- Nodes from the inventory (node-pool label, allocatable GPUs), berth's ConfigMap with the
  inventory's config and capabilities, any namespace on first use (as Run:ai creates a
  project's namespace), Secrets, ConfigMaps, claims, Services and every top-level kind.
- Behind it, the simulation: each top object and what belongs to it goes to the simulated
  scheduler; the pods it plays (scheduling with KAI's rules, fractions, gangs, node pools,
  pending reasons, runtimes, failures, backoff, TTL, suspend) become Pod objects with the
  conditions and container states a kubelet reports, and the top object's status conditions.

Its objects are kept in a state file, written shortly after every change, so the cluster
outlives any adapter. Restarted itself, it is a cluster whose nodes all rebooted: finished
workloads stay finished, unfinished ones start their pods again.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import os
import secrets
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic_core
import yaml
from aiohttp import web

from berth.scheduler_adapter import labels
from berth.scheduler_adapter.backend import PodStatus, WorkloadSnapshot
from berth.scheduler_adapter.simulation.cluster import SimulatedCluster
from berth.scheduler_adapter.simulation.inventory import Inventory
from berth.scheduler_adapter.top_kinds import pod_templates, top_kind

log = logging.getLogger(__name__)

APPLY = "application/apply-patch+yaml"
MERGE_PATCHES = ("application/merge-patch+json", "application/strategic-merge-patch+json")
CONFIG_NAMESPACE = "berth"
CONFIG_MAP = "berth-public"
EVENT_LOG = 200_000  # watch events kept; a watch from before them is answered 410 Gone
BOOKMARK_SECONDS = 10.0
SAVE_DELAY = 0.5  # seconds between a change and the state file catching up with it
SAVE_SHARE = 20  # ...at least this many times what the last save took (in CPU seconds)
# Top-object conditions that end a workload: restored as they were after a restart.
TERMINAL = frozenset({"Complete", "Succeeded", "Failed"})
LOG_PERIOD = 10.0  # simulated seconds between a running container's progress lines


@dataclass(frozen=True)
class Kind:
    group_version: str
    plural: str
    kind: str
    namespaced: bool = True


def served_kinds(inventory: Inventory) -> list[Kind]:
    """What the cluster serves: core kinds, the controllers' kinds, and the operators its
    capabilities say it runs (a kind it does not run answers 404, as a missing CRD does)."""
    capabilities = inventory.capabilities or inventory.default_capabilities()
    kinds = [
        Kind("v1", "pods", "Pod"),
        Kind("v1", "nodes", "Node", namespaced=False),
        Kind("v1", "namespaces", "Namespace", namespaced=False),
        Kind("v1", "services", "Service"),
        Kind("v1", "configmaps", "ConfigMap"),
        Kind("v1", "secrets", "Secret"),
        Kind("v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
        Kind("v1", "events", "Event"),
        Kind("batch/v1", "jobs", "Job"),
        Kind("apps/v1", "statefulsets", "StatefulSet"),
        Kind("apps/v1", "deployments", "Deployment"),
        Kind("autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
        Kind("scheduling.k8s.io/v1", "priorityclasses", "PriorityClass", namespaced=False),
        # Leader election of the agent's replicas (berth.scheduler_adapter.lease).
        Kind("coordination.k8s.io/v1", "leases", "Lease"),
    ]
    if capabilities.kai.shards is not None:
        kinds.append(Kind("kai.scheduler/v1", "schedulingshards", "SchedulingShard", False))
    for kind, api_version in sorted(capabilities.workloadApis.items()):
        kinds.append(Kind(api_version, f"{kind.lower()}s", kind))
    if capabilities.knative is not None:
        kinds.append(Kind(labels.KNATIVE_API_VERSION, "services", "Service"))
    return kinds


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def response(self) -> web.Response:
        return web.json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": self.reason,
                "message": self.message,
                "code": self.code,
            },
            status=self.code,
        )


Key = tuple[str, str]  # namespace ("" for cluster-scoped kinds), name
WorkloadKey = tuple[str, str]  # namespace, workload id


@dataclass
class _Watcher:
    kind: Kind
    namespace: str | None
    selector: list[tuple[str, str, str | None]]
    # (version, change, object, the event's line as sent)
    queue: asyncio.Queue[tuple[int, str, dict[str, Any], bytes]]


@dataclass(frozen=True)
class _PodPattern:
    """What a pod takes from its template: the same for every version of the pod, and shared
    by them (a stored object never changes in place)."""

    containers: list[dict[str, Any]]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    scheduler: str


def _pattern(template: Mapping[str, Any]) -> _PodPattern:
    metadata = template.get("metadata") or {}
    spec = template.get("spec") or {}
    containers = [
        {
            "name": str(c.get("name", "main")),
            "image": str(c.get("image", "")),
            "resources": c.get("resources") or {},
        }
        for c in spec.get("containers") or ()
    ] or [{"name": "main", "image": "", "resources": {}}]
    return _PodPattern(
        containers=containers,
        labels=metadata.get("labels") or {},
        annotations=metadata.get("annotations") or {},
        scheduler=str(spec.get("schedulerName") or labels.SCHEDULER_NAME),
    )


_NO_TEMPLATE = _pattern({})


@dataclass
class _PodLife:
    """What a pod's container has done, for its log: simulated times and how it ended."""

    image: str
    started: float | None = None
    ended: float | None = None
    outcome: str = ""  # "", "Completed", or the failure's reason
    message: str = ""
    restarts: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class SimulatedApiServer:
    def __init__(
        self,
        inventory: Inventory,
        *,
        cluster: str = "local",
        speed: float = 1.0,
        state_file: Path | None = None,
        token: str | None = None,
    ) -> None:
        self.inventory = inventory
        self.cluster = cluster
        self.engine = SimulatedCluster(inventory, speed=speed)
        self.kinds = served_kinds(inventory)
        self._by_path = {(k.group_version, k.plural): k for k in self.kinds}
        self._store: dict[Kind, dict[Key, dict[str, Any]]] = {k: {} for k in self.kinds}
        # Each stored object's JSON, made once and sent as often as it is asked for: in the
        # watch events, the answer to the request that wrote it, and the state file (a real
        # API server's watch cache keeps serialised objects as well). Valid while the object
        # stored under the key is the one encoded: a stored object never changes in place.
        self._json: dict[Kind, dict[Key, tuple[dict[str, Any], bytes]]] = {
            k: {} for k in self.kinds
        }
        self._version = 0
        self._events: deque[tuple[int, Kind, str, dict[str, Any]]] = deque()
        self._compacted = 0  # newest version dropped from the event log
        self._watchers: list[_Watcher] = []
        self._tops: dict[WorkloadKey, tuple[Kind, str]] = {}
        self._pods: dict[WorkloadKey, set[str]] = {}
        # Every object of a workload but its pods, so that nothing scans the whole store.
        self._members: dict[WorkloadKey, dict[tuple[str, str, str], tuple[Kind, Key]]] = {}
        self._lives: dict[Key, _PodLife] = {}
        # Each workload's pods as its top object's templates describe them, kept while the top
        # object's spec is the one they were read from: every snapshot of the workload writes
        # its pods, and the spec changes only when the workload is applied again.
        self._patterns: dict[WorkloadKey, tuple[Any, str, dict[str, _PodPattern]]] = {}
        self._state_file = state_file
        self._dirty = asyncio.Event()
        self.token = token or secrets.token_urlsafe(24)
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.requests = 0

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        restored = self._load()
        if not restored:
            self._seed()
        await self.engine.start()
        feed = self.engine.snapshots()
        self._refeed()
        self._tasks = [
            asyncio.create_task(self._materialize(feed), name="materialize"),
            asyncio.create_task(self._saver(), name="save-state"),
        ]
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 2**20)
        app.router.add_get("/readyz", self._ready)
        app.router.add_get("/version", self._server_version)
        app.router.add_get("/api", self._core_versions)
        app.router.add_get("/apis", self._groups)
        app.router.add_route("*", "/api/{version}/{rest:.*}", self._core)
        app.router.add_get("/api/{version}", self._core_discovery)
        app.router.add_get("/apis/{group}/{version}", self._discovery)
        app.router.add_route("*", "/apis/{group}/{version}/{rest:.*}", self._grouped)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or ()
        bound = sockets[0].getsockname()[1] if sockets else port
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._save()
        await self.engine.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def kubeconfig(self, context: str | None = None) -> str:
        name = context or self.cluster
        return yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": name, "cluster": {"server": self.url}}],
                "users": [{"name": f"berth-{name}", "user": {"token": self.token}}],
                "contexts": [{"name": name, "context": {"cluster": name, "user": f"berth-{name}"}}],
                "current-context": name,
            },
            sort_keys=False,
        )

    def _seed(self) -> None:
        """A new cluster: its nodes, berth's ConfigMap, KAI's shards and priority classes."""
        nodes = self._kind("v1", "nodes")
        for pool in self.inventory.node_pools:
            for index in range(pool.nodes):
                name = f"{pool.label_value}-node-{index}"
                node_labels = {
                    labels.NODE_POOL_LABEL: pool.label_value,
                    "kubernetes.io/hostname": name,
                }
                if pool.node_type:
                    node_labels[labels.NODE_TYPE_LABEL] = pool.node_type
                resources = {
                    "cpu": f"{pool.cpu:g}",
                    "memory": pool.memory,
                    labels.GPU_RESOURCE: str(pool.gpus_per_node),
                    "pods": "110",
                }
                self._put(
                    nodes,
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "metadata": {"name": name, "labels": node_labels},
                        "status": {
                            "capacity": resources,
                            "allocatable": resources,
                            "conditions": [{"type": "Ready", "status": "True"}],
                            "nodeInfo": {"kubeletVersion": f"v{self.inventory.version}"},
                        },
                    },
                )
        capabilities = self.inventory.capabilities or self.inventory.default_capabilities()
        config = self.inventory.config()
        self._ensure_namespace(CONFIG_NAMESPACE)
        self._put(
            self._kind("v1", "configmaps"),
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": CONFIG_MAP, "namespace": CONFIG_NAMESPACE},
                "data": {"config": yaml.safe_dump(config, sort_keys=True)},
            },
        )
        for name in capabilities.kai.priorityClasses:
            self._put(
                self._kind("scheduling.k8s.io/v1", "priorityclasses"),
                {
                    "apiVersion": "scheduling.k8s.io/v1",
                    "kind": "PriorityClass",
                    "metadata": {"name": name},
                    "value": 0,
                },
            )
        if capabilities.kai.shards is not None and self._has(
            "kai.scheduler/v1", "schedulingshards"
        ):
            for shard in capabilities.kai.shards:
                self._put(
                    self._kind("kai.scheduler/v1", "schedulingshards"),
                    {
                        "apiVersion": "kai.scheduler/v1",
                        "kind": "SchedulingShard",
                        "metadata": {"name": shard or "default"},
                        "spec": {"partitionLabelValue": shard},
                    },
                )

    # --- HTTP -----------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests += 1
        if request.path != "/readyz" and request.headers.get("Authorization") != (
            f"Bearer {self.token}"
        ):
            return ApiError(401, "Unauthorized", "Unauthorized").response()
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as exc:
            return exc.response()

    async def _ready(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _server_version(self, _request: web.Request) -> web.Response:
        major, minor, *_ = [*self.inventory.version.split("."), "0", "0"][:3]
        return web.json_response(
            {"major": major, "minor": minor, "gitVersion": f"v{self.inventory.version}"}
        )

    async def _core_versions(self, _request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})

    async def _groups(self, _request: web.Request) -> web.Response:
        groups: dict[str, list[str]] = {}
        for kind in self.kinds:
            if "/" in kind.group_version:
                group, version = kind.group_version.split("/")
                if version not in groups.setdefault(group, []):
                    groups[group].append(version)
        return web.json_response(
            {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": group,
                        "versions": [
                            {"groupVersion": f"{group}/{v}", "version": v} for v in versions
                        ],
                        "preferredVersion": {
                            "groupVersion": f"{group}/{versions[0]}",
                            "version": versions[0],
                        },
                    }
                    for group, versions in sorted(groups.items())
                ],
            }
        )

    async def _core_discovery(self, request: web.Request) -> web.Response:
        return self._resource_list(request.match_info["version"])

    async def _discovery(self, request: web.Request) -> web.Response:
        return self._resource_list(f"{request.match_info['group']}/{request.match_info['version']}")

    def _resource_list(self, group_version: str) -> web.Response:
        resources = [
            {
                "name": kind.plural,
                "kind": kind.kind,
                "namespaced": kind.namespaced,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            }
            for kind in self.kinds
            if kind.group_version == group_version
        ]
        if not resources:
            raise ApiError(404, "NotFound", f"the server could not find {group_version}")
        return web.json_response(
            {"kind": "APIResourceList", "groupVersion": group_version, "resources": resources}
        )

    async def _core(self, request: web.Request) -> web.StreamResponse:
        return await self._route(request, request.match_info["version"])

    async def _grouped(self, request: web.Request) -> web.StreamResponse:
        group, version = request.match_info["group"], request.match_info["version"]
        return await self._route(request, f"{group}/{version}")

    async def _route(self, request: web.Request, group_version: str) -> web.StreamResponse:
        parts = [p for p in request.match_info["rest"].split("/") if p]
        namespace: str | None = None
        # /namespaces/NAME is a namespace itself; /namespaces/NAME/PLURAL/... is inside one.
        if len(parts) >= 3 and parts[0] == "namespaces":
            namespace, parts = parts[1], parts[2:]
        if not parts:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        kind = self._by_path.get((group_version, parts[0]))
        if kind is None:
            raise ApiError(404, "NotFound", f"the server could not find {group_version}/{parts[0]}")
        name = parts[1] if len(parts) > 1 else None
        sub = parts[2] if len(parts) > 2 else None
        if kind.namespaced and name is not None and namespace is None:
            raise ApiError(404, "NotFound", f"{kind.plural} are namespaced")
        method = request.method
        if name is None:
            if method == "GET":
                if request.query.get("watch") in ("true", "1"):
                    return await self._watch(request, kind, namespace)
                return web.json_response(self._list(kind, namespace, request.query))
            if method == "POST":
                body = await _body(request)
                created = self._create(kind, namespace, body)
                return self._respond(kind, _key_of(kind, created), created, status=201)
            raise ApiError(405, "MethodNotAllowed", f"{method} on a collection")
        key = (namespace or "", name)
        if sub == "log" and kind.kind == "Pod" and method == "GET":
            return await self._log(request, key)
        if sub not in (None, "status"):
            raise ApiError(404, "NotFound", f"no subresource {sub}")
        if method == "GET":
            return self._respond(kind, key, self._get(kind, key))
        if method == "PATCH":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            body = await _body(request)
            if content_type == APPLY:
                if sub == "status":
                    raise ApiError(415, "UnsupportedMediaType", "apply the status subresource")
                return self._respond(kind, key, self._apply(kind, key, body))
            if content_type in MERGE_PATCHES:
                patched = self._merge_patch(kind, key, body, status_only=sub == "status")
                return self._respond(kind, key, patched)
            raise ApiError(415, "UnsupportedMediaType", f"patch type {content_type}")
        if method == "PUT":
            body = await _body(request)
            replaced = self._replace(kind, key, body, status_only=sub == "status")
            return self._respond(kind, key, replaced)
        if method == "DELETE":
            body = await _body(request) if request.can_read_body else {}
            policy = request.query.get("propagationPolicy") or body.get("propagationPolicy")
            return web.json_response(self._delete(kind, key, str(policy or "Background")))
        raise ApiError(405, "MethodNotAllowed", method)

    # --- the store ------------------------------------------------------------------------------

    def _respond(
        self, kind: Kind, key: Key, obj: dict[str, Any], status: int = 200
    ) -> web.Response:
        return web.Response(
            body=self._encoded(kind, key, obj), status=status, content_type="application/json"
        )

    def _encoded(self, kind: Kind, key: Key, obj: dict[str, Any]) -> bytes:
        """``obj``'s JSON; kept while ``obj`` is the object stored under ``key``."""
        cached = self._json[kind].get(key)
        if cached is not None and cached[0] is obj:
            return cached[1]
        # pydantic-core's encoder: a quarter of the stdlib's time, and this is most of what a
        # watched cluster of thousands of pods costs to serve.
        data = pydantic_core.to_json(obj)
        if self._store[kind].get(key) is obj:
            self._json[kind][key] = (obj, data)
        return data

    def _event_line(self, kind: Kind, change: str, obj: dict[str, Any]) -> bytes:
        data = self._encoded(kind, _key_of(kind, obj), obj)
        return b'{"type":"%s","object":%s}\n' % (change.encode(), data)

    def _kind(self, group_version: str, plural: str) -> Kind:
        return self._by_path[(group_version, plural)]

    def _has(self, group_version: str, plural: str) -> bool:
        return (group_version, plural) in self._by_path

    def _get(self, kind: Kind, key: Key) -> dict[str, Any]:
        found = self._store[kind].get(key)
        if found is None:
            raise ApiError(404, "NotFound", f'{kind.plural} "{key[1]}" not found')
        return found

    def _list(self, kind: Kind, namespace: str | None, query: Mapping[str, str]) -> dict[str, Any]:
        selector = _selector(query.get("labelSelector", ""))
        items = [
            obj
            for (ns, _), obj in sorted(self._store[kind].items())
            if (namespace is None or ns == namespace) and _matches(obj, selector)
        ]
        return {
            "apiVersion": kind.group_version,
            "kind": f"{kind.kind}List",
            "metadata": {"resourceVersion": str(self._version)},
            "items": items,
        }

    def _create(self, kind: Kind, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        meta = body.get("metadata") or {}
        name = str(meta.get("name") or "")
        if not name:
            raise ApiError(422, "Invalid", "metadata.name: Required value")
        key = ((namespace or str(meta.get("namespace") or "")) if kind.namespaced else "", name)
        if key in self._store[kind]:
            raise ApiError(409, "AlreadyExists", f'{kind.plural} "{name}" already exists')
        return self._write(kind, key, body, None)

    def _apply(self, kind: Kind, key: Key, body: dict[str, Any]) -> dict[str, Any]:
        existing = self._store[kind].get(key)
        applied = {k: v for k, v in body.items() if k != "status"}
        # Applied over nothing, the applied fields are the object (the body is this request's).
        merged = _merge(copy.deepcopy(existing), applied, apply=True) if existing else applied
        return self._write(kind, key, merged, existing)

    def _merge_patch(
        self, kind: Kind, key: Key, patch: dict[str, Any], *, status_only: bool
    ) -> dict[str, Any]:
        existing = self._get(kind, key)
        if status_only:
            patch = {"status": patch.get("status")}
        return self._write(kind, key, _merge(copy.deepcopy(existing), patch), existing)

    def _replace(
        self, kind: Kind, key: Key, body: dict[str, Any], *, status_only: bool
    ) -> dict[str, Any]:
        existing = self._get(kind, key)
        wanted = str((body.get("metadata") or {}).get("resourceVersion") or "")
        if wanted and wanted != existing["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        if status_only:
            body = {**copy.deepcopy(existing), "status": body.get("status")}
        else:
            body = {**body, "status": existing.get("status")}
        return self._write(kind, key, body, existing)

    def _write(
        self, kind: Kind, key: Key, body: dict[str, Any], existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Validate, hand workload objects to the simulation, store, and tell the watches."""
        namespace, name = key
        body = dict(body)
        body["apiVersion"], body["kind"] = kind.group_version, kind.kind
        meta = dict(body.get("metadata") or {})
        if meta.get("name", name) != name:
            raise ApiError(400, "BadRequest", "metadata.name does not match the path")
        meta["name"] = name
        if kind.namespaced:
            meta["namespace"] = namespace
        for server_field in ("uid", "creationTimestamp", "resourceVersion", "generation"):
            meta.pop(server_field, None)
            if existing is not None and server_field in existing["metadata"]:
                meta[server_field] = existing["metadata"][server_field]
        meta.pop("managedFields", None)
        if existing is not None and existing["metadata"].get("deletionTimestamp"):
            meta["deletionTimestamp"] = existing["metadata"]["deletionTimestamp"]
        body["metadata"] = meta
        if existing is not None and _same(body, existing):
            return existing
        if kind.namespaced:
            self._ensure_namespace(namespace)
        workload = self._workload_of(body)
        if kind.kind == "Secret" and body.get("data"):
            _run_now(self.engine.apply_secrets([body]))
        if workload is not None and kind.kind != "Pod":
            self._simulate(kind, body, workload)
        return self._put(kind, body, existing)

    def _put(
        self, kind: Kind, body: dict[str, Any], existing: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        meta = body["metadata"]
        key = (str(meta.get("namespace", "")) if kind.namespaced else "", str(meta["name"]))
        if existing is None:
            existing = self._store[kind].get(key)
        self._version += 1
        if "uid" not in meta:
            meta["uid"] = str(uuid.uuid4())
        if "creationTimestamp" not in meta:
            meta["creationTimestamp"] = _timestamp()
        if existing is None or existing.get("spec") != body.get("spec"):
            meta["generation"] = int(meta.get("generation", 0)) + 1
        meta["resourceVersion"] = str(self._version)
        self._store[kind][key] = body
        self._index(kind, key, body)
        self._record(kind, "MODIFIED" if existing is not None else "ADDED", body)
        return body

    def _remove(self, kind: Kind, key: Key) -> None:
        obj = self._store[kind].pop(key, None)
        self._json[kind].pop(key, None)
        if obj is None:
            return
        self._version += 1
        gone = copy.copy(obj)
        gone["metadata"] = {**obj["metadata"], "resourceVersion": str(self._version)}
        workload = self._workload_of(obj)
        if workload is not None:
            if self._tops.get(workload) == (kind, key[1]):
                del self._tops[workload]
            members = self._members.get(workload)
            if members is not None:
                members.pop((kind.group_version, kind.kind, key[1]), None)
                if not members:
                    del self._members[workload]
        self._record(kind, "DELETED", gone)

    def _index(self, kind: Kind, key: Key, obj: dict[str, Any]) -> None:
        workload = self._workload_of(obj)
        if workload is None or kind.kind in ("Pod", "Event") or not kind.namespaced:
            return
        self._members.setdefault(workload, {})[(kind.group_version, kind.kind, key[1])] = (
            kind,
            key,
        )
        if top_kind(obj) is not None:
            self._tops[workload] = (kind, key[1])

    def _record(self, kind: Kind, change: str, obj: dict[str, Any]) -> None:
        self._events.append((self._version, kind, change, obj))
        while len(self._events) > EVENT_LOG:
            self._compacted = self._events.popleft()[0]
        line: bytes | None = None
        for watcher in self._watchers:
            if (
                watcher.kind is kind
                and (
                    watcher.namespace is None
                    or watcher.namespace == obj["metadata"].get("namespace")
                )
                and _matches(obj, watcher.selector)
            ):
                # Encoded once for every watch it goes to.
                if line is None:
                    line = self._event_line(kind, change, obj)
                watcher.queue.put_nowait((self._version, change, obj, line))
        self._dirty.set()

    def _ensure_namespace(self, namespace: str) -> None:
        namespaces = self._kind("v1", "namespaces")
        if namespace and ("", namespace) not in self._store[namespaces]:
            self._put(
                namespaces,
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": namespace},
                    "status": {"phase": "Active"},
                },
            )

    # --- deleting -------------------------------------------------------------------------------

    def _delete(self, kind: Kind, key: Key, policy: str) -> dict[str, Any]:
        obj = self._get(kind, key)
        workload = self._workload_of(obj)
        is_top = workload is not None and self._tops.get(workload) == (kind, key[1])
        if policy == "Orphan":
            self._remove(kind, key)
            return obj
        if is_top and workload is not None:
            if policy == "Foreground" and not obj["metadata"].get("deletionTimestamp"):
                marked = copy.deepcopy(obj)
                marked["metadata"]["deletionTimestamp"] = _timestamp()
                marked["metadata"]["finalizers"] = ["foregroundDeletion"]
                obj = self._put(kind, marked, obj)
            if self.engine.knows(*workload):
                # The simulation stops the pods and reports the workload gone; the
                # materializer then removes what the top object owns, and the top object.
                _run_now(self.engine.delete(*workload))
            else:
                self._remove_workload(workload)
            return obj
        self._remove_owned(str(obj["metadata"].get("uid", "")))
        self._remove(kind, key)
        return obj

    def _remove_owned(self, uid: str) -> None:
        """The garbage collector: every object with an owner reference to ``uid``, and theirs."""
        if not uid:
            return
        for kind, objects in self._store.items():
            for key, obj in list(objects.items()):
                owners = obj["metadata"].get("ownerReferences") or ()
                if any(ref.get("uid") == uid for ref in owners):
                    self._remove_owned(str(obj["metadata"].get("uid", "")))
                    self._remove(kind, key)

    def _remove_workload(self, workload: WorkloadKey) -> None:
        namespace, _ = workload
        pods = self._kind("v1", "pods")
        self._patterns.pop(workload, None)
        for name in sorted(self._pods.pop(workload, set())):
            self._remove(pods, (namespace, name))
            self._lives.pop((namespace, name), None)
        top = self._tops.get(workload)
        if top is None:
            return
        kind, name = top
        obj = self._store[kind].get((namespace, name))
        if obj is None:
            return
        uid = str(obj["metadata"].get("uid", ""))
        for member_kind, key in list((self._members.get(workload) or {}).values()):
            member = self._store[member_kind].get(key)
            owners = (member or {}).get("metadata", {}).get("ownerReferences") or ()
            if any(ref.get("uid") == uid for ref in owners):
                self._remove(member_kind, key)
        self._remove(kind, (namespace, name))

    # --- the simulation -------------------------------------------------------------------------

    def _workload_of(self, obj: Mapping[str, Any]) -> WorkloadKey | None:
        meta = obj.get("metadata") or {}
        workload_id = (meta.get("labels") or {}).get(labels.WORKLOAD_ID_LABEL)
        namespace = meta.get("namespace")
        return (str(namespace), str(workload_id)) if workload_id and namespace else None

    def _simulate(self, kind: Kind, body: dict[str, Any], workload: WorkloadKey) -> None:
        """Hand a changed object of a workload to the simulation (before storing it: a
        manifest the simulation cannot run is refused with 422, as an admission webhook
        would)."""
        objects = [o for o in self._objects_of(workload) if not _same_object(o, body)]
        objects.append(body)
        top = next((o for o in objects if top_kind(o) is not None), None)
        if top is None:
            return  # its top object comes next; the simulation starts with that one
        suspended = _suspended(top)
        if self.engine.knows(*workload) and suspended != self.engine.suspended(*workload):
            _run_now((self.engine.suspend if suspended else self.engine.resume)(*workload))
        if suspended:
            return
        try:
            _run_now(self.engine.apply([_view(o) for o in objects], owned=True))
        except Exception as exc:  # PermanentError: the simulation cannot run the manifests
            raise ApiError(422, "Invalid", str(exc)) from None

    def _objects_of(self, workload: WorkloadKey) -> list[dict[str, Any]]:
        return [
            self._store[kind][key]
            for kind, key in (self._members.get(workload) or {}).values()
            if key in self._store[kind]
        ]

    def _refeed(self) -> None:
        """At start, give the simulation every unfinished workload of the stored objects."""
        for workload, (kind, name) in list(self._tops.items()):
            top = self._store[kind].get((workload[0], name))
            if top is None:
                continue
            if top["metadata"].get("deletionTimestamp"):
                self._remove_workload(workload)
                continue
            conditions = (top.get("status") or {}).get("conditions") or ()
            if any(c.get("type") in TERMINAL and c.get("status") == "True" for c in conditions):
                continue
            objects = self._objects_of(workload)
            try:
                _run_now(self.engine.apply([_view(o) for o in objects], owned=True))
            except Exception:
                log.warning("cannot restore workload %s", workload, exc_info=True)
                continue
            if _suspended(top):
                _run_now(self.engine.suspend(*workload))

    async def _materialize(self, feed: Any) -> None:
        async for batch in feed:
            for snapshot in batch:
                try:
                    self._reflect(snapshot)
                except Exception:
                    log.exception("reflecting workload %s failed", snapshot.workload_id)

    def _reflect(self, snapshot: WorkloadSnapshot) -> None:
        """Write one simulated state as the cluster's objects: the top object's conditions and
        one Pod per simulated pod, as a kubelet and the controllers would report them."""
        workload = (snapshot.namespace, snapshot.workload_id)
        if not snapshot.exists:
            self._remove_workload(workload)
            return
        found = self._tops.get(workload)
        if found is None:
            return  # refused before it was stored
        kind, name = found
        top = self._store[kind].get((snapshot.namespace, name))
        if top is None:
            return
        patterns = self._patterns_of(workload, top)
        pods = self._kind("v1", "pods")
        wanted = {pod.name: pod for pod in snapshot.pods}
        known = self._pods.setdefault(workload, set())
        for gone in sorted(known - set(wanted)):
            self._remove(pods, (snapshot.namespace, gone))
            self._lives.pop((snapshot.namespace, gone), None)
        for pod in snapshot.pods:
            key = (snapshot.namespace, pod.name)
            existing = self._store[pods].get(key)
            body = self._pod(top, pod, patterns.get(pod.name, _NO_TEMPLATE), existing)
            if existing is None or not _same(body, existing):
                self._put(pods, body, existing)
            self._live(key, pod, top)
        known.clear()
        known.update(wanted)
        # The controller reports on its pods after the kubelet did, as in a real cluster.
        conditions = [
            {"type": type_, "status": "True", "reason": reason, "message": message}
            for type_, reason, message in snapshot.conditions
        ]
        old = [
            {k: c.get(k) for k in ("type", "status", "reason", "message")}
            for c in (top.get("status") or {}).get("conditions") or ()
        ]
        if old != conditions:
            now = _timestamp()
            # A new object sharing the stored one's unchanged parts: a stored object (and what
            # the watches were sent) is never changed in place, and ``_put`` writes only into
            # the metadata, which is copied.
            updated = {
                **top,
                "metadata": dict(top["metadata"]),
                "status": {
                    **(top.get("status") or {}),
                    "conditions": [{**c, "lastTransitionTime": now} for c in conditions],
                },
            }
            self._put(kind, updated, top)

    def _patterns_of(self, workload: WorkloadKey, top: Mapping[str, Any]) -> dict[str, _PodPattern]:
        spec, name = top.get("spec"), str(top["metadata"]["name"])
        cached = self._patterns.get(workload)
        if cached is not None and cached[0] is spec and cached[1] == name:
            return cached[2]
        patterns = (
            {pod: _pattern(template) for pod, template in pod_templates(top)}
            if top_kind(top) is not None
            else {}
        )
        self._patterns[workload] = (spec, name, patterns)
        return patterns

    def _pod(
        self,
        top: Mapping[str, Any],
        pod: PodStatus,
        pattern: _PodPattern,
        existing: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        top_meta = top["metadata"]
        containers = pattern.containers
        pod_labels = {
            **pattern.labels,
            labels.WORKLOAD_ID_LABEL: top_meta["labels"][labels.WORKLOAD_ID_LABEL],
        }
        meta: dict[str, Any] = {
            "name": pod.name,
            "namespace": top_meta["namespace"],
            "labels": pod_labels,
            "annotations": dict(pattern.annotations),
            "ownerReferences": [
                {
                    "apiVersion": top["apiVersion"],
                    "kind": top["kind"],
                    "name": top_meta["name"],
                    "uid": top_meta.get("uid", ""),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        if existing is not None:
            for kept in ("uid", "creationTimestamp", "resourceVersion", "generation"):
                if kept in existing["metadata"]:
                    meta[kept] = existing["metadata"][kept]
        if pod.reason == "Terminating":
            meta["deletionTimestamp"] = (existing or {}).get("metadata", {}).get(
                "deletionTimestamp"
            ) or _timestamp()
        conditions: list[dict[str, Any]] = []
        if pod.scheduled:
            conditions.append({"type": "PodScheduled", "status": "True"})
        elif pod.reason:
            conditions.append(
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": pod.reason,
                    "message": pod.message,
                }
            )
        conditions.append({"type": "Ready", "status": "True" if pod.ready else "False"})
        life = self._lives.get((top_meta["namespace"], pod.name))
        statuses = [
            {
                "name": c["name"],
                "image": c["image"],
                "ready": pod.ready,
                "restartCount": life.restarts if life else 0,
                "state": _container_state(pod),
            }
            for c in containers
        ]
        status: dict[str, Any] = {"phase": pod.phase, "conditions": conditions}
        if pod.scheduled:
            status["containerStatuses"] = statuses
        spec: dict[str, Any] = {
            "schedulerName": pattern.scheduler,
            "containers": containers,
        }
        if pod.node:
            spec["nodeName"] = pod.node
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}

    # --- container logs -------------------------------------------------------------------------

    def _live(self, key: Key, pod: PodStatus, top: Mapping[str, Any]) -> None:
        life = self._lives.get(key)
        if life is None:
            life = self._lives[key] = _PodLife(
                image=self.engine.image(*self._workload_of(top) or ("", ""))
            )
        now = self.engine.now()
        running = pod.phase == "Running" and pod.ready
        if running and (life.started is None or life.ended is not None):
            if life.ended is not None:
                life.restarts += 1
            life.started, life.ended, life.outcome, life.message = now, None, "", ""
        elif (pod.phase in ("Succeeded", "Failed") or pod.reason == "CrashLoopBackOff") and (
            life.started is not None and life.ended is None
        ):
            life.ended = now
            life.outcome = "Completed" if pod.phase == "Succeeded" else pod.reason or "Error"
            life.message = pod.message
        life.changed.set()

    def _log_lines(self, key: Key, life: _PodLife) -> list[str]:
        if life.started is None:
            return []
        until = life.ended if life.ended is not None else self.engine.now()
        lines = [
            f"{_at(self, life.started)} starting {life.image or 'container'} on cluster "
            f"{self.cluster} (pod {key[1]}, attempt {life.restarts + 1})"
        ]
        step = 1
        while life.started + step * LOG_PERIOD <= until:
            at = life.started + step * LOG_PERIOD
            loss = 2.5 / (1 + 0.15 * step)
            lines.append(f"{_at(self, at)} step {step * 100}: loss {loss:.4f}")
            step += 1
        if life.ended is not None:
            if life.outcome == "Completed":
                lines.append(f"{_at(self, life.ended)} done: exit code 0")
            else:
                lines.append(f"{_at(self, life.ended)} Traceback (most recent call last):")
                lines.append('  File "/workspace/train.py", line 42, in <module>')
                lines.append(
                    "RuntimeError: simulated crash" + (f" ({life.message})" if life.message else "")
                )
                lines.append(
                    f"{_at(self, life.ended)} {life.outcome}: container exited with code 1"
                )
        return lines

    async def _log(self, request: web.Request, key: Key) -> web.StreamResponse:
        pods = self._kind("v1", "pods")
        pod = self._get(pods, key)
        life = self._lives.get(key)
        if life is None or life.started is None:
            waiting = ""
            for status in (pod.get("status") or {}).get("containerStatuses") or ():
                waiting = ((status.get("state") or {}).get("waiting") or {}).get("reason", "")
            raise ApiError(
                400,
                "BadRequest",
                f'container in pod "{key[1]}" is waiting to start'
                + (f": {waiting}" if waiting else ""),
            )
        follow = request.query.get("follow") in ("true", "1")
        tail = request.query.get("tailLines")
        lines = self._log_lines(key, life)
        if tail is not None:
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        if not follow:
            return web.Response(text="".join(f"{line}\n" for line in lines))
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        sent = len(self._log_lines(key, life))
        for line in lines:
            await response.write(f"{line}\n".encode())
        while key in self._lives and life.ended is None:
            life.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(life.changed.wait(), LOG_PERIOD / self.engine.speed)
            current = self._log_lines(key, life)
            for line in current[sent:]:
                await response.write(f"{line}\n".encode())
            sent = len(current)
        await response.write_eof()
        return response

    # --- watching -------------------------------------------------------------------------------

    async def _watch(
        self, request: web.Request, kind: Kind, namespace: str | None
    ) -> web.StreamResponse:
        query = request.query
        selector = _selector(query.get("labelSelector", ""))
        since_text = query.get("resourceVersion", "")
        timeout = float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        watcher = _Watcher(kind, namespace, selector, asyncio.Queue())
        # Registered and caught up without yielding in between: nothing falls in the gap.
        self._watchers.append(watcher)
        backlog: list[tuple[int, str, dict[str, Any]]] = []
        gone = False
        if since_text in ("", "0"):
            backlog = [
                (self._version, "ADDED", obj)
                for (ns, _), obj in sorted(self._store[kind].items())
                if (namespace is None or ns == namespace) and _matches(obj, selector)
            ]
        else:
            since = int(since_text)
            if since < self._compacted:
                gone = True
            else:
                backlog = [
                    (version, change, obj)
                    for version, k, change, obj in self._events
                    if version > since
                    and k is kind
                    and (namespace is None or obj["metadata"].get("namespace") == namespace)
                    and _matches(obj, selector)
                ]
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        try:
            await response.prepare(request)
            if gone:
                await _send(
                    response,
                    "ERROR",
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": "Expired",
                        "code": 410,
                        "message": f"too old resource version: {since_text} ({self._compacted})",
                    },
                )
                return response
            for _, change, obj in backlog:
                await response.write(self._event_line(kind, change, obj))
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    _, _, _, line = await asyncio.wait_for(
                        watcher.queue.get(), min(left, BOOKMARK_SECONDS)
                    )
                except TimeoutError:
                    if bookmarks:
                        await _send(
                            response,
                            "BOOKMARK",
                            {
                                "apiVersion": kind.group_version,
                                "kind": kind.kind,
                                "metadata": {"resourceVersion": str(self._version)},
                            },
                        )
                    continue
                chunk = [line]
                while not watcher.queue.empty() and len(chunk) < 500:
                    chunk.append(watcher.queue.get_nowait()[3])
                await response.write(b"".join(chunk))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._watchers.remove(watcher)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    # --- state file -----------------------------------------------------------------------------

    async def _saver(self) -> None:
        delay = SAVE_DELAY
        while True:
            await self._dirty.wait()
            await asyncio.sleep(delay)
            self._dirty.clear()
            started = time.process_time()
            try:
                await asyncio.to_thread(self._write_state, self._state())
            except Exception:
                log.exception("saving the cluster's state failed")
            # Each save writes every object: a cluster of thousands of workloads changing all
            # the time is saved less often, so that saving stays a small share of its CPU.
            spent = time.process_time() - started
            delay = max(SAVE_DELAY, SAVE_SHARE * spent)

    def _state(self) -> bytes:
        # Pods and events are the simulation's, played again after a restart. Made of the
        # objects' kept encodings: a save encodes only what changed since the last one.
        head = json.dumps({"version": self._version, "token": self.token})[:-1].encode()
        objects = b",".join(
            self._encoded(kind, key, obj)
            for kind, stored in self._store.items()
            if kind.kind not in ("Pod", "Event")
            for key, obj in stored.items()
        )
        return b'%s,"objects":[%s]}' % (head, objects)

    def _save(self) -> None:
        with contextlib.suppress(Exception):
            self._write_state(self._state())

    def _write_state(self, state: bytes) -> None:
        if self._state_file is None:
            return
        temporary = self._state_file.with_suffix(".tmp")
        temporary.write_bytes(state)
        os.replace(temporary, self._state_file)

    def _load(self) -> bool:
        if self._state_file is None or not self._state_file.exists():
            return False
        state = json.loads(self._state_file.read_text(encoding="utf-8"))
        self._version = int(state.get("version", 0))
        self._compacted = self._version  # a watch from before the restart lists again
        self.token = str(state.get("token") or self.token)
        for obj in state.get("objects") or ():
            group_version, kind_name = str(obj.get("apiVersion")), str(obj.get("kind"))
            kind = next(
                (k for k in self.kinds if k.group_version == group_version and k.kind == kind_name),
                None,
            )
            if kind is None:
                continue
            meta = obj["metadata"]
            key = (str(meta.get("namespace", "")) if kind.namespaced else "", str(meta["name"]))
            self._store[kind][key] = obj
            self._index(kind, key, obj)
        log.info("restored %d objects from %s", len(state.get("objects") or ()), self._state_file)
        return True


# --- helpers ------------------------------------------------------------------------------------


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        loaded = json.loads(raw)
    except ValueError:
        try:
            loaded = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ApiError(400, "BadRequest", f"cannot read the body: {exc}") from None
    if not isinstance(loaded, dict):
        raise ApiError(400, "BadRequest", "the body must be an object")
    return loaded


def _key_of(kind: Kind, obj: Mapping[str, Any]) -> Key:
    meta = obj["metadata"]
    return (str(meta.get("namespace", "")) if kind.namespaced else "", str(meta["name"]))


async def _send(response: web.StreamResponse, change: str, obj: Mapping[str, Any]) -> None:
    line = json.dumps({"type": change, "object": obj}, separators=(",", ":"))
    await response.write(line.encode() + b"\n")


def _selector(text: str) -> list[tuple[str, str, str | None]]:
    """``a``, ``!a``, ``a=b``, ``a==b``, ``a!=b``, comma-separated."""
    terms: list[tuple[str, str, str | None]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "!=" in part:
            key, value = part.split("!=", 1)
            terms.append((key.strip(), "!=", value.strip()))
        elif "=" in part:
            key, value = part.replace("==", "=").split("=", 1)
            terms.append((key.strip(), "=", value.strip()))
        elif part.startswith("!"):
            terms.append((part[1:].strip(), "!", None))
        else:
            terms.append((part, "exists", None))
    return terms


def _matches(obj: Mapping[str, Any], selector: Iterable[tuple[str, str, str | None]]) -> bool:
    found = (obj.get("metadata") or {}).get("labels") or {}
    for key, op, value in selector:
        if op == "exists" and key not in found:
            return False
        if op == "!" and key in found:
            return False
        if op == "=" and found.get(key) != value:
            return False
        if op == "!=" and found.get(key) == value:
            return False
    return True


def _merge(target: Any, patch: Any, *, apply: bool = False) -> Any:
    """JSON merge patch (RFC 7386); with ``apply``, nulls are values like any other. The
    result takes the patch's values as they are: every patch is a request's own decoded body,
    which nothing else holds."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None and not apply:
            target.pop(key, None)
        else:
            target[key] = _merge(target.get(key), value, apply=apply)
    return target


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    def strip(obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = {
            k: v
            for k, v in (obj.get("metadata") or {}).items()
            if k not in ("resourceVersion", "generation", "managedFields")
        }
        return {**obj, "metadata": meta}

    return strip(a) == strip(b)


def _same_object(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return (a.get("apiVersion"), a.get("kind"), a["metadata"].get("name")) == (
        b.get("apiVersion"),
        b.get("kind"),
        b["metadata"].get("name"),
    )


def _view(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An object as its author wrote it: what the simulation compares between applies."""
    meta = {
        k: v
        for k, v in (obj.get("metadata") or {}).items()
        if k
        not in (
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "deletionTimestamp",
            "finalizers",
        )
    }
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def _suspended(top: Mapping[str, Any]) -> bool:
    """Whether a top object asks to be suspended, read where its kind keeps the flag."""
    described = top_kind(top)
    spec = top.get("spec") or {}
    if described is None or described.suspend is None:
        return False
    if described.suspend == "spec.suspend":
        return bool(spec.get("suspend"))
    if described.suspend == "spec.runPolicy.suspend":
        return bool((spec.get("runPolicy") or {}).get("suspend"))
    return spec.get("replicas") == 0


def _container_state(pod: PodStatus) -> dict[str, Any]:
    if pod.phase == "Succeeded":
        return {"terminated": {"reason": "Completed", "exitCode": 0}}
    if pod.phase == "Failed":
        return {
            "terminated": {
                "reason": pod.reason or "Error",
                "message": pod.message,
                "exitCode": 1,
            }
        }
    if pod.reason and pod.reason not in ("Terminating",):
        return {"waiting": {"reason": pod.reason, "message": pod.message}}
    if pod.phase == "Running":
        return {"running": {}}
    return {"waiting": {"reason": "ContainerCreating", "message": ""}}


def _run_now(coroutine: Any) -> Any:
    """Run a coroutine of the simulation that never awaits anything to completion, here."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the simulation awaited while applying")


_stamp: tuple[int, str] = (0, "")


def _timestamp() -> str:
    # Second resolution: formatted once a second, not for every object written.
    global _stamp
    now = int(time.time())
    if now != _stamp[0]:
        _stamp = (now, datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _stamp[1]


def _at(server: SimulatedApiServer, simulated: float) -> str:
    wall = time.time() - (server.engine.now() - simulated) / server.engine.speed
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
