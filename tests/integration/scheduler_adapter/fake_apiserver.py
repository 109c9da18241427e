"""A small fake Kubernetes API server (aiohttp) speaking the real REST paths and watch format.

Enough of the API for the kubernetes backend: namespaced GET/POST/PATCH/DELETE, cluster-wide
LIST and WATCH with label selectors and resource versions, server-side apply
(``application/apply-patch+yaml``) and JSON merge patch, foreground deletion through owner
references, 404/409/410/422/429 errors. Tests set pod and job status, inject failures and read
the request log. Nothing here schedules pods: tests play the controllers.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"

Key = tuple[str, str, str, str]  # (apiVersion, plural, namespace, name)


@dataclass
class Injected:
    method: str
    fragment: str
    status: int
    times: int


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    authorization: str = ""


@dataclass
class FakeApiServer:
    # (apiVersion, plural) the server serves; others answer 404 like a CRD not installed.
    installed: set[tuple[str, str]] = field(
        default_factory=lambda: {
            ("v1", "pods"),
            ("v1", "nodes"),
            ("v1", "services"),
            ("v1", "configmaps"),
            ("v1", "secrets"),
            ("v1", "persistentvolumeclaims"),
            ("batch/v1", "jobs"),
            ("apps/v1", "statefulsets"),
            ("apps/v1", "deployments"),
            ("autoscaling/v2", "horizontalpodautoscalers"),
            ("kubeflow.org/v1", "pytorchjobs"),
            ("kubeflow.org/v1", "tfjobs"),
            ("kubeflow.org/v1", "xgboostjobs"),
            ("kubeflow.org/v2beta1", "mpijobs"),
            ("scheduling.run.ai/v2alpha2", "podgroups"),
        }
    )
    namespaces: set[str] = field(default_factory=lambda: {"berth"})
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    # Watch events as (resourceVersion, apiVersion, plural, type, object).
    events: list[tuple[int, str, str, str, dict[str, Any]]] = field(default_factory=list)
    oldest_version: int = 0  # watches from before this answer 410 Gone
    injected: list[Injected] = field(default_factory=list)
    delayed: list[Injected] = field(default_factory=list)  # status: the delay in milliseconds

    def __post_init__(self) -> None:
        self._versions = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/api/{version}/{rest:.*}", self._core)
        app.router.add_route("GET", "/apis/{group}/{version}", self._discovery)
        app.router.add_route("*", "/apis/{group}/{version}/{rest:.*}", self._grouped)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- what tests use -------------------------------------------------------------------------

    def fail(self, method: str, fragment: str, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests of ``method`` whose path contains ``fragment``."""
        self.injected.append(Injected(method, fragment, status, times))

    def slow(self, method: str, fragment: str, seconds: float, times: int = 1) -> None:
        """Answer the next ``times`` requests (watches aside) of ``method`` whose path contains
        ``fragment`` after ``seconds``: a loaded API server."""
        self.delayed.append(Injected(method, fragment, int(seconds * 1000), times))

    def calls(self, method: str | None = None, fragment: str = "") -> list[Request]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method)
            and fragment in r.path
            and r.query.get("watch") != "true"
        ]

    def get(self, api_version: str, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return self.objects[(api_version, plural, namespace, name)]

    def find(self, api_version: str, plural: str) -> list[dict[str, Any]]:
        return [
            o for (v, p, _, _), o in sorted(self.objects.items()) if (v, p) == (api_version, plural)
        ]

    async def set_status(
        self, api_version: str, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        obj = self.objects[(api_version, plural, namespace, name)]
        obj["status"] = status
        await self._record((api_version, plural, namespace, name), "MODIFIED", obj)

    async def put_pod(
        self,
        namespace: str,
        name: str,
        owner: dict[str, Any],
        *,
        phase: str = "Pending",
        scheduled: bool = False,
        ready: bool = False,
        reason: str = "",
        message: str = "",
        waiting: str = "",
    ) -> dict[str, Any]:
        """Create or update a pod owned by ``owner`` with its status, as a controller would."""
        key: Key = ("v1", "pods", namespace, name)
        labels = dict(owner["spec"].get("template", {}).get("metadata", {}).get("labels") or {})
        labels.update(owner["metadata"].get("labels", {}))
        conditions = [
            {
                "type": "PodScheduled",
                "status": "True" if scheduled else "False",
                **({"reason": reason, "message": message} if not scheduled else {}),
            },
            {"type": "Ready", "status": "True" if ready else "False"},
        ]
        status: dict[str, Any] = {"phase": phase, "conditions": conditions}
        if waiting:
            status["containerStatuses"] = [
                {"name": "main", "state": {"waiting": {"reason": waiting, "message": message}}}
            ]
        existing = self.objects.get(key)
        pod = existing or {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "labels": labels,
                "ownerReferences": [_reference(owner)],
            },
            "spec": {},
        }
        pod["status"] = status
        if scheduled:
            pod["spec"]["nodeName"] = "node-1"
        self.objects[key] = pod
        await self._record(key, "MODIFIED" if existing else "ADDED", pod)
        return pod

    def add_node(self, name: str, pool: str | None, gpus: int) -> None:
        labels = {"kai.scheduler/node-pool": pool} if pool else {}
        self.objects[("v1", "nodes", "", name)] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "uid": str(uuid.uuid4()), "labels": labels},
            "status": {"allocatable": {"cpu": "64", "nvidia.com/gpu": str(gpus)}},
        }

    def install_knative(self, features: dict[str, str]) -> None:
        """Knative Serving 1.23 with ``features`` in its config-features ConfigMap."""
        self.installed.add(("serving.knative.dev/v1", "services"))
        self.objects[("v1", "configmaps", "knative-serving", "config-features")] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "config-features",
                "namespace": "knative-serving",
                "labels": {"app.kubernetes.io/version": "1.23.0"},
            },
            "data": {"_example": "(documentation)", **features},
        }

    async def remove(self, api_version: str, plural: str, namespace: str, name: str) -> None:
        """Delete an object outright (and what it owns), as the garbage collector would."""
        await self._delete((api_version, plural, namespace, name))

    # --- routing --------------------------------------------------------------------------------

    async def _discovery(self, request: web.Request) -> web.Response:
        """The APIResourceList of a group version, as the real server's discovery answers."""
        info = request.match_info
        group_version = f"{info['group']}/{info['version']}"
        self.requests.append(Request(request.method, request.path, {}, ""))
        plurals = sorted(plural for version, plural in self.installed if version == group_version)
        if not plurals:
            return _status(404, "NotFound", f"the server could not find {group_version}")
        return web.json_response(
            {
                "kind": "APIResourceList",
                "groupVersion": group_version,
                "resources": [{"name": plural, "namespaced": True} for plural in plurals],
            }
        )

    async def _core(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, request.match_info["version"])

    async def _grouped(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        return await self._handle(request, f"{info['group']}/{info['version']}")

    async def _handle(self, request: web.Request, api_version: str) -> web.StreamResponse:
        query = dict(request.query)
        self.requests.append(
            Request(
                request.method,
                request.path,
                query,
                request.headers.get("Content-Type", ""),
                request.headers.get("Authorization", ""),
            )
        )
        for injected in self.injected:
            if (
                injected.times > 0
                and injected.method == request.method
                and injected.fragment in request.path
            ):
                injected.times -= 1
                return _status(injected.status, "Injected", f"injected {injected.status}")
        for delayed in self.delayed:
            if (
                delayed.times > 0
                and delayed.method == request.method
                and delayed.fragment in request.path
                and query.get("watch") != "true"
            ):
                delayed.times -= 1
                await asyncio.sleep(delayed.status / 1000)
        parts = [p for p in request.match_info["rest"].split("/") if p]
        if parts and parts[0] == "namespaces" and len(parts) >= 3:
            namespace, plural, name = parts[1], parts[2], (parts[3] if len(parts) > 3 else "")
        elif len(parts) == 1:
            namespace, plural, name = "", parts[0], ""
        else:
            return _status(404, "NotFound", "unknown path")
        if (api_version, plural) not in self.installed:
            return _status(404, "NotFound", f"the server could not find {plural}")
        if not name:
            if request.method == "GET":
                if query.get("watch") == "true":
                    return await self._watch(request, api_version, plural, namespace, query)
                return self._list(api_version, plural, namespace, query)
            if request.method == "POST":
                return await self._create(request, api_version, plural, namespace)
            return _status(405, "MethodNotAllowed", request.method)
        key: Key = (api_version, plural, namespace, name)
        if request.method == "GET":
            if key not in self.objects:
                return _status(404, "NotFound", f'{plural} "{name}" not found')
            return web.json_response(self.objects[key])
        if request.method == "PATCH":
            return await self._patch(request, key)
        if request.method == "DELETE":
            if key not in self.objects:
                return _status(404, "NotFound", f'{plural} "{name}" not found')
            body = await request.json() if request.can_read_body else {}
            deleted = copy.deepcopy(self.objects[key])
            await self._delete(key, propagation=body.get("propagationPolicy", "Background"))
            return web.json_response(deleted)
        return _status(405, "MethodNotAllowed", request.method)

    # --- verbs ----------------------------------------------------------------------------------

    def _list(
        self, api_version: str, plural: str, namespace: str, query: dict[str, str]
    ) -> web.Response:
        selector = query.get("labelSelector", "")
        items = [
            obj
            for (v, p, ns, _), obj in sorted(self.objects.items())
            if (v, p) == (api_version, plural)
            and (not namespace or ns == namespace)
            and _matches(obj, selector)
        ]
        version = str(self.events[-1][0] if self.events else 0)
        # Like the real server, list items carry neither apiVersion nor kind.
        stripped = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in items]
        return web.json_response(
            {"kind": "List", "metadata": {"resourceVersion": version}, "items": stripped}
        )

    async def _watch(
        self,
        request: web.Request,
        api_version: str,
        plural: str,
        namespace: str,
        query: dict[str, str],
    ) -> web.StreamResponse:
        since = int(query.get("resourceVersion") or 0)
        selector = query.get("labelSelector", "")
        timeout = float(query.get("timeoutSeconds") or 300)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        if since < self.oldest_version:
            gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
            await response.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
            return response
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        cursor = next((i for i, e in enumerate(self.events) if e[0] > since), len(self.events))
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            while loop.time() < deadline:
                while cursor < len(self.events):
                    _, v, p, kind, obj = self.events[cursor]
                    cursor += 1
                    meta = obj["metadata"]
                    if (
                        (v, p) != (api_version, plural)
                        or (namespace and meta["namespace"] != namespace)
                        or not _matches(obj, selector)
                    ):
                        continue
                    line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
                    await response.write(line)
                async with self._changed:
                    if cursor == len(self.events):
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(
                                self._changed.wait(), max(0.01, deadline - loop.time())
                            )
        return response

    async def _create(
        self, request: web.Request, api_version: str, plural: str, namespace: str
    ) -> web.Response:
        body = await request.json()
        name = body.get("metadata", {}).get("name", "")
        key: Key = (api_version, plural, namespace, name)
        if key in self.objects:
            return _status(409, "AlreadyExists", f'{plural} "{name}" already exists')
        problem = self._invalid(body, namespace, name)
        if problem:
            return problem
        obj = self._stamp(body, None)
        self.objects[key] = obj
        await self._record(key, "ADDED", obj)
        return web.json_response(obj, status=201)

    async def _patch(self, request: web.Request, key: Key) -> web.Response:
        content_type = request.headers.get("Content-Type", "")
        body = json.loads(await request.text())  # JSON is YAML: an apply body may be either
        existing = self.objects.get(key)
        if content_type == APPLY:
            if request.query.get("fieldManager") is None:
                return _status(400, "BadRequest", "fieldManager is required for apply")
            problem = self._invalid(body, key[2], key[3])
            if problem:
                return problem
            obj = self._stamp(body, existing)
        elif content_type == MERGE:
            if existing is None:
                return _status(404, "NotFound", f'{key[1]} "{key[3]}" not found')
            obj = _merge(copy.deepcopy(existing), body)
            obj["metadata"]["resourceVersion"] = str(next(self._versions))
        else:
            return _status(415, "UnsupportedMediaType", content_type)
        if existing is not None and _same(existing, obj):
            return web.json_response(existing)
        self.objects[key] = obj
        await self._record(key, "MODIFIED" if existing else "ADDED", obj)
        return web.json_response(obj, status=200 if existing else 201)

    async def _delete(self, key: Key, propagation: str = "Background") -> None:
        obj = self.objects.pop(key, None)
        if obj is None:
            return
        uid = obj["metadata"]["uid"]
        owned = [
            k
            for k, o in self.objects.items()
            if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or ())
        ]
        # Foreground: the owner is marked first and disappears after its dependents.
        if propagation == "Foreground" and owned:
            obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            self.objects[key] = obj
            await self._record(key, "MODIFIED", obj)
            self.objects.pop(key)
        if propagation != "Orphan":
            for dependent in owned:
                await self._delete(dependent, propagation)
        await self._record(key, "DELETED", obj)

    # --- helpers --------------------------------------------------------------------------------

    def _invalid(self, body: dict[str, Any], namespace: str, name: str) -> web.Response | None:
        meta = body.get("metadata") or {}
        if namespace and namespace not in self.namespaces:
            return _status(404, "NotFound", f'namespaces "{namespace}" not found')
        if meta.get("name") != name or not body.get("apiVersion") or not body.get("kind"):
            return _status(422, "Invalid", "apiVersion, kind and a matching name are required")
        for reference in meta.get("ownerReferences") or ():
            if not reference.get("uid"):
                return _status(422, "Invalid", "metadata.ownerReferences.uid: Invalid value: ''")
        return None

    def _stamp(self, body: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        meta["uid"] = existing["metadata"]["uid"] if existing else str(uuid.uuid4())
        meta["resourceVersion"] = str(next(self._versions))
        if existing is not None:
            # Apply owns what it sends; what other managers set (status, a suspend patch's
            # annotations) stays, as server-side apply keeps other managers' fields.
            if "status" in existing:
                obj["status"] = existing["status"]
            kept = {
                k: v
                for k, v in (existing["metadata"].get("annotations") or {}).items()
                if k.startswith("berth.dev/suspended") or k.startswith("berth.dev/replicas-")
            }
            meta["annotations"] = {**(meta.get("annotations") or {}), **kept}
        return obj

    async def _record(self, key: Key, kind: str, obj: dict[str, Any]) -> None:
        version = next(self._versions)
        obj["metadata"]["resourceVersion"] = str(version)
        self.events.append((version, key[0], key[1], kind, copy.deepcopy(obj)))
        async with self._changed:
            self._changed.notify_all()


def _reference(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }


def _matches(obj: dict[str, Any], selector: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        if "=" in term:
            name, value = term.split("=", 1)
            if labels.get(name) != value:
                return False
        elif term not in labels:
            return False
    return True


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for name, value in patch.items():
        if value is None:
            target.pop(name, None)
        else:
            target[name] = _merge(target.get(name), value)
    return target


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def strip(o: dict[str, Any]) -> dict[str, Any]:
        c = copy.deepcopy(o)
        c["metadata"].pop("resourceVersion", None)
        return c

    return strip(a) == strip(b)


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code}
    return web.json_response({**body, "reason": reason, "message": message}, status=code)
