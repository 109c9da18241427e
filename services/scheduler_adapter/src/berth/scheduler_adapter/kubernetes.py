"""The kubernetes backend: the ``ClusterBackend`` port over a real API server (kubernetes-asyncio).

- Apply is server-side apply (``application/apply-patch+yaml``, one field manager, forced), so
  applying the same manifests again is a no-op and a restart never duplicates objects. The top
  object goes first: the objects it owns need its uid in their ownerReferences, which the
  renderer cannot know and this backend fills from the apply response.
- Delete is one foreground delete of the top object; the garbage collector removes what it
  owns (pods, tool Services, ephemeral claims; KAI's PodGroup is owned by the top object too).
  Persistent claims are not owned and stay.
- Status comes from LIST + WATCH of pods and every top kind, cluster-wide, filtered by berth's
  workload-id label; a watch that ends or expires (410) is followed by a fresh LIST (a resync),
  and a kind whose CRD is not installed is retried at the next resync. The first LIST of the top
  kinds is also what a restarted agent reconciles its records against (``listed``): only a
  workload the cluster does not hold in full is applied again.
- Every request passes a client-side token bucket (``qps``/``burst``) and API errors become
  ``TransientError`` (retry later: 429, 5xx, timeouts, connection errors) or ``PermanentError``
  (the request itself is wrong: 4xx) at this boundary.

- Capabilities (``read_config()["capabilities"]``) are discovered from the API: the Kubeflow
  kinds served and at which version, Knative and its ``config-features`` flags, KAI's
  SchedulingShards and the PriorityClasses, the nodes' MIG strategy label. The ``capabilities``
  key of berth's config map overrides what was found (what the API cannot tell: KAI's version,
  GPU sharing, queues per pool).

Happy path per workload: one call per rendered object (a training, a distributed training or a
workspace: 1, an inference: 1 with Knative, 2-3 without; each + its tool Services and claims);
watches are shared by every workload and cost nothing per workload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import yaml
from aiohttp.helpers import get_env_proxy_for_url
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import load_incluster_config, load_kube_config
from pydantic_core import from_json, to_json
from yarl import URL

from berth.contracts.capabilities import (
    KNATIVE_FEATURES,
    MPI_OPERATOR_APIS,
    TRAINING_OPERATOR_APIS,
    ClusterCapabilities,
)
from berth.scheduler_adapter import labels
from berth.scheduler_adapter.backend import (
    Listing,
    PodStatus,
    WorkloadSnapshot,
    is_top,
    top_object,
)
from berth.scheduler_adapter.feed import SnapshotFeed
from berth.scheduler_adapter.top_kinds import expected_pods, top_kind
from berth.shared.errors import PermanentError, TransientError

log = logging.getLogger(__name__)

FIELD_MANAGER = "berth-scheduler-adapter"
# An apply's query, encoded once: given as parameters, it would be url-encoded per request.
APPLY_QUERY = f"?{urlencode({'fieldManager': FIELD_MANAGER, 'force': 'true'})}"
# Set on the top object while the workload is suspended; read back into the snapshot.
SUSPENDED_ANNOTATION = "berth.dev/suspended"
# A suspended StatefulSet/Deployment is scaled to zero; its replicas wait here for the resume.
REPLICAS_ANNOTATION = "berth.dev/replicas-before-suspend"
CONFIG_DEFAULTS: dict[str, Any] = {"workloadOwnershipProtection": False, "knative": False}
# Where capabilities are discovered: Knative's feature flags, KAI's shards, priority classes.
KNATIVE_NAMESPACE = "knative-serving"
KNATIVE_FEATURES_MAP = "config-features"
SHARDS_PATH = "/apis/kai.scheduler/v1/schedulingshards"
PRIORITY_CLASSES_PATH = "/apis/scheduling.k8s.io/v1/priorityclasses"
MIG_STRATEGY_LABEL = "nvidia.com/mig.strategy"


# Compared and hashed by identity: each kind is one object (``RESOURCES``), and the watches'
# indexes look a kind up several times per event, which a hash of its fields made per look-up
# slowed by a sixth.
@dataclass(frozen=True, eq=False)
class Resource:
    api_version: str
    kind: str
    plural: str

    def collection(self, namespace: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        return (
            f"{base}/namespaces/{namespace}/{self.plural}" if namespace else f"{base}/{self.plural}"
        )


RESOURCES: dict[tuple[str, str], Resource] = {
    (r.api_version, r.kind): r
    for r in (
        Resource("v1", "Pod", "pods"),
        Resource("v1", "Service", "services"),
        Resource("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        Resource("v1", "ConfigMap", "configmaps"),
        Resource("v1", "Secret", "secrets"),
        Resource("batch/v1", "Job", "jobs"),
        Resource("apps/v1", "StatefulSet", "statefulsets"),
        Resource("apps/v1", "Deployment", "deployments"),
        Resource("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
        Resource("kubeflow.org/v1", "PyTorchJob", "pytorchjobs"),
        Resource("kubeflow.org/v1", "TFJob", "tfjobs"),
        Resource("kubeflow.org/v1", "XGBoostJob", "xgboostjobs"),
        Resource("kubeflow.org/v2beta1", "MPIJob", "mpijobs"),
        Resource("serving.knative.dev/v1", "Service", "services"),
        # Rendered by earlier versions (KAI's podgrouper makes them now): re-applied on resync.
        Resource("scheduling.run.ai/v2alpha2", "PodGroup", "podgroups"),
    )
}
POD = RESOURCES[("v1", "Pod")]
CONFIG_MAP = RESOURCES[("v1", "ConfigMap")]
WATCHED: tuple[Resource, ...] = (
    POD,
    *(r for r in RESOURCES.values() if is_top({"apiVersion": r.api_version, "kind": r.kind})),
)


def resource_of(obj: Mapping[str, Any]) -> Resource:
    try:
        return RESOURCES[(str(obj["apiVersion"]), str(obj["kind"]))]
    except KeyError:
        raise PermanentError(f"cannot apply {obj.get('apiVersion')} {obj.get('kind')}") from None


class TokenBucket:
    """At most ``burst`` requests at once, refilled at ``qps`` per second (client-go's limiter)."""

    def __init__(self, qps: float, burst: int) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be positive and burst at least 1")
        self._qps = qps
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._qps)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self._qps)


def translate(exc: BaseException, what: str) -> Exception:
    """An API or transport failure as a berth error."""
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        detail = _message(exc)
        text = f"{what}: {status} {detail}".strip()
        if status in (408, 429) or status >= 500 or status == 0:
            return TransientError(text)
        return PermanentError(text)
    if isinstance(exc, (aiohttp.ClientError, TimeoutError, OSError)):
        return TransientError(f"{what}: {exc!r}")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


def _message(exc: ApiException) -> str:
    with contextlib.suppress(Exception):
        return str(json.loads(exc.body or b"{}").get("message", ""))
    return str(exc.reason or "")


def _true_conditions(obj: Mapping[str, Any]) -> tuple[tuple[str, str, str], ...]:
    conditions = (obj.get("status") or {}).get("conditions") or ()
    return tuple(
        (str(c.get("type", "")), str(c.get("reason") or ""), str(c.get("message") or ""))
        for c in conditions
        if c.get("status") == "True"
    )


def pod_status(pod: Mapping[str, Any]) -> PodStatus:
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or ()}
    scheduled = (conditions.get("PodScheduled") or {}).get("status") == "True"
    ready = (conditions.get("Ready") or {}).get("status") == "True"
    reason = message = ""
    if not scheduled:
        condition = conditions.get("PodScheduled") or {}
        reason, message = str(condition.get("reason") or ""), str(condition.get("message") or "")
    else:
        for container in [
            *(status.get("initContainerStatuses") or ()),
            *(status.get("containerStatuses") or ()),
        ]:
            state = container.get("state") or {}
            waiting = state.get("waiting") or state.get("terminated")
            if waiting and waiting.get("reason") not in (None, "Completed"):
                reason, message = str(waiting.get("reason")), str(waiting.get("message") or "")
                break
    return PodStatus(
        name=str(pod["metadata"]["name"]),
        phase=str(status.get("phase") or "Pending"),
        scheduled=scheduled,
        ready=ready,
        reason=reason,
        message=message,
        node=(pod.get("spec") or {}).get("nodeName"),
    )


def suspended(top: Mapping[str, Any]) -> bool:
    annotations = top["metadata"].get("annotations") or {}
    return annotations.get(SUSPENDED_ANNOTATION) == "true"


def snapshot_of(
    workload_id: str,
    namespace: str,
    top: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    status: Callable[[Mapping[str, Any]], PodStatus] = pod_status,
) -> WorkloadSnapshot:
    """``status`` reads a pod (the watches pass what they read when the pod came)."""
    if top is None:
        return WorkloadSnapshot(workload_id, namespace, False, (), (), 0)
    annotations = top["metadata"].get("annotations") or {}
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp") or suspended(top)]
    return WorkloadSnapshot(
        workload_id=workload_id,
        namespace=namespace,
        exists=True,
        conditions=_true_conditions(top),
        pods=tuple(status(p) for p in sorted(live, key=lambda p: p["metadata"]["name"])),
        expected_pods=expected_pods(top),
        suspended=suspended(top),
        note=str(annotations.get(labels.PHASE_NOTE_ANNOTATION, "")),
        deleting=bool(top["metadata"].get("deletionTimestamp")),
    )


async def load_configuration(kubeconfig: Path | None, context: str | None) -> Configuration:
    """The API server and credentials: the pod's service account when running in a cluster
    with no kubeconfig given, else the kubeconfig (``~/.kube/config`` when None)."""
    configuration = Configuration()
    if kubeconfig is None and Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists():
        load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        await load_kube_config(
            config_file=str(kubeconfig) if kubeconfig else None,
            context=context,
            client_configuration=configuration,
        )
    return configuration


class KubernetesCluster:
    name = "kubernetes"

    def __init__(
        self,
        *,
        kubeconfig: Path | None = None,
        context: str | None = None,
        qps: float = 20.0,
        burst: int = 30,
        configuration: Configuration | None = None,
        config_namespace: str = "berth",
        config_map: str = "berth-public",
        resync_seconds: float = 300.0,
        request_timeout: float = 30.0,
        config_cache_seconds: float = 10.0,
        retries: int = 3,
        retry_delay: float = 0.5,
        concurrency: int = 32,
        snapshot_gather: float = 0.0,
        sync_timeout: float = 30.0,
    ) -> None:
        self._kubeconfig = kubeconfig
        self._context = context
        self._configuration = configuration
        self._bucket = TokenBucket(qps, burst)
        self._config_namespace = config_namespace
        self._config_map = config_map
        self._resync = resync_seconds
        # One timeout object for every request, rather than one made per request from a number.
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._config_ttl = config_cache_seconds
        # Transient apply failures are retried here: after the commit nobody else retries them
        # until the next start's resync.
        self._retries = retries
        self._retry_delay = retry_delay
        self._concurrency = concurrency  # workloads applied at once
        self._config: tuple[float, dict[str, Any]] | None = None
        self._api: _PlainApiClient | None = None
        self._feed = SnapshotFeed(500, snapshot_gather)
        # What the watches have seen: per resource, object key → object.
        self._seen: dict[Resource, dict[tuple[str, str], dict[str, Any]]] = {r: {} for r in WATCHED}
        # The same, by workload: a snapshot reads one workload's objects, never all of them.
        self._by_workload: dict[tuple[str, str], dict[Resource, set[tuple[str, str]]]] = {}
        # Each seen pod read once, when it came: a workload's snapshot is made at every event
        # of any of its objects, and would otherwise read all of its pods anew each time.
        self._statuses: dict[tuple[str, str], PodStatus] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._synced = asyncio.Event()
        self._listed: set[Resource] = set()
        # Set once every kind but the pods is listed: see ``_watch``.
        self._tops_listed = asyncio.Event()
        # Workloads seen before the first full listing, and whether it is in (or given up on).
        self._held: set[tuple[str, str]] = set()
        self._whole = False
        # How long ``listed`` waits for every watch's first LIST: a kind that cannot be listed
        # (an API server refusing it) must not hold the agent's start for ever.
        self._sync_timeout = sync_timeout
        self.calls = 0  # API requests made, for tests and metrics

    # --- the port -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._api is not None:
            return
        configuration = self._configuration or await load_configuration(
            self._kubeconfig, self._context
        )
        self._api = _PlainApiClient(configuration)
        self._tasks = [
            asyncio.create_task(self._watch(r), name=f"watch-{r.plural}") for r in WATCHED
        ]
        self._tasks.append(asyncio.create_task(self._release_late(), name="watch-bound"))

    async def close(self) -> None:
        self._feed.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._api is not None:
            await self._api.close()
            self._api = None

    async def apply(self, objects: list[dict[str, Any]]) -> None:
        groups: dict[str, list[dict[str, Any]]] = {}
        for obj in objects:
            found = obj.get("metadata", {}).get("labels") or {}
            groups.setdefault(str(found.get(labels.WORKLOAD_ID_LABEL, "")), []).append(obj)
        failures: list[Exception] = []
        # Workloads are applied side by side (a batch is hundreds of round trips), each one's
        # objects in order; one workload's bad manifest must not hold back the others.
        gate = asyncio.Semaphore(self._concurrency)

        async def one(workload_id: str, group: list[dict[str, Any]]) -> None:
            async with gate:
                await self._apply_one_workload(workload_id, group, failures)

        await asyncio.gather(*(one(w, g) for w, g in groups.items()))
        if failures:
            raise failures[0]

    async def _apply_one_workload(
        self, workload_id: str, group: list[dict[str, Any]], failures: list[Exception]
    ) -> None:
        try:
            await self._apply_retrying(group)
        except PermanentError as exc:
            log.warning("cannot apply workload %s: %s", workload_id, exc)
            namespace = str(group[0]["metadata"].get("namespace", ""))
            # Reported through the snapshot feed, so the workload's phase says why.
            self._feed.publish(
                WorkloadSnapshot(
                    workload_id, namespace, True, (("Failed", "ApplyError", str(exc)),), (), 0
                )
            )
            failures.append(exc)
        except TransientError as exc:
            failures.append(exc)

    async def apply_secrets(self, secrets: list[dict[str, Any]]) -> None:
        for secret in secrets:
            # The applied object the API answers with holds the values: it is dropped unread.
            await self._apply_retrying([secret], top=False)

    async def _apply_retrying(self, objects: list[dict[str, Any]], *, top: bool = True) -> None:
        delay = self._retry_delay
        for attempt in range(self._retries + 1):
            try:
                if top:
                    await self._apply_workload(objects)
                else:
                    for obj in objects:
                        await self._apply_one(obj, answer=False)
                return
            except TransientError:
                if attempt == self._retries:
                    raise
                await asyncio.sleep(delay)
                delay *= 2

    async def delete(self, namespace: str, workload_id: str) -> None:
        top = self._top(namespace, workload_id)
        if top is None:
            return
        path = f"{resource_of(top).collection(namespace)}/{top['metadata']['name']}"
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
        with contextlib.suppress(_Gone):
            await self._request("DELETE", path, body=body, what=f"delete {workload_id}")

    async def suspend(self, namespace: str, workload_id: str) -> None:
        await self._set_suspended(namespace, workload_id, True)

    async def resume(self, namespace: str, workload_id: str) -> None:
        await self._set_suspended(namespace, workload_id, False)

    async def listed(self) -> Listing:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._synced.wait(), self._sync_timeout)
        # The top kinds only: pods are never applied, and the objects a workload's top object
        # owns (tool Services, claims, autoscalers) are not watched, so nothing is told of them.
        tops = [r for r in self._listed if r is not POD]
        return Listing(
            kinds=frozenset((r.api_version, r.kind) for r in tops),
            objects=frozenset(
                (r.api_version, r.kind, namespace, name)
                for r in tops
                for namespace, name in self._seen[r]
            ),
        )

    async def adopt(self, objects: list[dict[str, Any]]) -> None:
        pass

    def snapshots(self) -> AsyncIterator[list[WorkloadSnapshot]]:
        return self._feed.subscribe(self._all_snapshots)

    async def read_config(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._config is not None and now - self._config[0] < self._config_ttl:
            return dict(self._config[1])
        stored = await self._stored_config()
        pools, gpus, mig = await self._inventory()
        config = {**CONFIG_DEFAULTS, **(stored or {}), "nodePools": pools, "gpus": gpus}
        capabilities = await self._discover(config, mig)
        config["knative"] = capabilities.knative is not None
        config["capabilities"] = capabilities.model_dump(mode="json")
        self._config = (now, config)
        return dict(config)

    async def set_config(self, settings: dict[str, Any]) -> None:
        stored = await self._stored_config()
        merged = {**(stored or {}), **settings}
        data = {"config": yaml.safe_dump(merged, sort_keys=True)}
        path = CONFIG_MAP.collection(self._config_namespace)
        if stored is None:
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": self._config_map, "namespace": self._config_namespace},
                "data": data,
            }
            await self._request("POST", path, body=body, what="create the cluster config")
        else:
            await self._request(
                "PATCH",
                f"{path}/{self._config_map}",
                body={"data": data},
                content_type="application/merge-patch+json",
                what="update the cluster config",
            )
        self._config = None

    # --- pods and their logs ------------------------------------------------------------------

    def workload_pods(self, workload_id: str) -> list[dict[str, Any]]:
        """The workload's pods as the watch last saw them (no API call)."""
        return [
            pod
            for workload in self._by_workload
            if workload[1] == workload_id
            for pod in self._objects(POD, workload)
        ]

    def active_pods(self) -> list[dict[str, Any]]:
        """Every pod of berth's workloads that holds a node, as the watch last saw them."""
        return [
            pod
            for pod in self._seen[POD].values()
            if (pod.get("spec") or {}).get("nodeName")
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]

    async def nodes(self) -> list[dict[str, Any]]:
        listed = await self._request("GET", "/api/v1/nodes", what="list nodes")
        return list(listed.get("items") or ())

    async def node_pools(self) -> dict[str, str]:
        """Each node's pool (KAI's node-pool label; "default" for unlabelled nodes)."""
        try:
            nodes = await self._request("GET", "/api/v1/nodes", what="list nodes")
        except (_Gone, PermanentError):
            return {}
        return {
            str(node["metadata"]["name"]): str(
                ((node["metadata"].get("labels") or {}).get(labels.NODE_POOL_LABEL)) or "default"
            )
            for node in nodes.get("items") or ()
        }

    async def pod_log(self, namespace: str, pod: str, container: str | None = None) -> str:
        """A container's log (the pod's log subresource)."""
        query = [("container", container)] if container else []
        what = f"read the log of {namespace}/{pod}"
        response = await self._send(
            "GET",
            f"{POD.collection(namespace)}/{pod}/log",
            query,
            {"Accept": "*/*"},
            None,
            self._timeout,
            what,
        )
        async with response:
            return await response.text()

    # --- introspection for tests ----------------------------------------------------------------

    async def wait_synced(self) -> None:
        """Until every watch has listed once."""
        await self._synced.wait()

    # --- applying -------------------------------------------------------------------------------

    async def _apply_workload(self, objects: list[dict[str, Any]]) -> None:
        top = top_object(objects)
        ordered = ([top] if top is not None else []) + [o for o in objects if o is not top]
        # Only objects owned by the top object need its uid from the apply's answer; most
        # workloads are their top object alone, whose answer is then read but not decoded.
        owned = top is not None and any(_owner_refs(o, top) for o in ordered[1:])
        uid = ""
        for obj in ordered:
            body: dict[str, Any] = dict(obj)
            if top is not None and obj is not top and _owner_refs(obj, top):
                # The manifests stay as rendered (they are applied again on resync): the uid
                # goes into copies of the dicts on the way to the reference.
                name = top["metadata"]["name"]
                body = {
                    **obj,
                    "metadata": {
                        **obj["metadata"],
                        "ownerReferences": [
                            {**r, "uid": uid} if r.get("name") == name else r
                            for r in obj["metadata"]["ownerReferences"]
                        ],
                    },
                }
            applied = await self._apply_one(body, answer=obj is top and owned)
            if obj is top:
                uid = str(applied.get("metadata", {}).get("uid", ""))

    async def _apply_one(self, obj: dict[str, Any], *, answer: bool = True) -> dict[str, Any]:
        """Apply one object; its state as applied when ``answer`` (else ``{}``)."""
        meta = obj["metadata"]
        path = f"{resource_of(obj).collection(meta['namespace'])}/{meta['name']}{APPLY_QUERY}"
        what = f"apply {obj['kind']} {meta['namespace']}/{meta['name']}"
        try:
            return await self._request(
                "PATCH",
                path,
                body=obj,
                content_type="application/apply-patch+yaml",
                what=what,
                answer=answer,
            )
        except _Gone:
            # Apply creates missing objects, so a 404 means no namespace or no such kind (CRD).
            raise PermanentError(f"{what}: namespace or resource kind not found") from None

    async def _set_suspended(self, namespace: str, workload_id: str, value: bool) -> None:
        top = self._top(namespace, workload_id)
        if top is None:
            return
        kind = top["kind"]
        suspend_at = getattr(top_kind(top), "suspend", None)
        annotations: dict[str, Any] = {SUSPENDED_ANNOTATION: "true" if value else None}
        spec: dict[str, Any] = {}
        if suspend_at == "spec.suspend":
            spec["suspend"] = value
        elif suspend_at == "spec.runPolicy.suspend":
            spec["runPolicy"] = {"suspend": value}
        elif suspend_at == "spec.replicas":
            current = top["metadata"].get("annotations") or {}
            if value:
                annotations[REPLICAS_ANNOTATION] = str((top.get("spec") or {}).get("replicas", 1))
                spec["replicas"] = 0
            else:
                spec["replicas"] = int(current.get(REPLICAS_ANNOTATION, 1))
                annotations[REPLICAS_ANNOTATION] = None
        else:
            raise PermanentError(f"a {kind} cannot be suspended")
        # One merge patch sets the spec and the marker the snapshot reads back.
        body = {"metadata": {"annotations": annotations}, "spec": spec}
        path = f"{resource_of(top).collection(namespace)}/{top['metadata']['name']}"
        await self._request(
            "PATCH",
            path,
            body=body,
            content_type="application/merge-patch+json",
            what=f"{'suspend' if value else 'resume'} {workload_id}",
        )

    async def _inventory(self) -> tuple[list[str], int, str | None]:
        """Node pools (KAI's node-pool label; "default" for unlabelled nodes), allocatable
        GPUs of the cluster's nodes, and the MIG strategy their labels report (None: unknown)."""
        try:
            nodes = await self._request("GET", "/api/v1/nodes", what="list nodes")
        except (_Gone, PermanentError):
            # An agent without RBAC to list nodes still works; it just cannot report capacity.
            return [], 0, None
        pools: set[str] = set()
        gpus = 0
        mig: str | None = "none"
        for node in nodes.get("items") or ():
            node_labels = (node.get("metadata") or {}).get("labels") or {}
            pools.add(str(node_labels.get(labels.NODE_POOL_LABEL, "default")))
            allocatable = (node.get("status") or {}).get("allocatable") or {}
            with contextlib.suppress(ValueError):
                gpus += int(str(allocatable.get(labels.GPU_RESOURCE, "0")))
            # The GPU operator labels each node with the device plugin's MIG strategy.
            if node_labels.get(MIG_STRATEGY_LABEL) in ("single", "mixed") and mig != "mixed":
                mig = str(node_labels[MIG_STRATEGY_LABEL])
        return sorted(pools), gpus, mig

    # --- capabilities ---------------------------------------------------------------------------

    async def _discover(self, config: Mapping[str, Any], mig: str | None) -> ClusterCapabilities:
        """What the cluster runs, read from its API; best effort. What cannot be read keeps
        its default (``ClusterCapabilities``), and the ``capabilities`` key of berth's config
        map overrides what was found (KAI's version, GPU sharing, queues per pool)."""
        found: dict[str, Any] = {}
        try:
            found["workloadApis"], found["knative"] = await self._discover_apis()
            found["kai"] = await self._discover_kai()
        except (TransientError, PermanentError) as exc:
            log.warning("cannot discover the cluster's capabilities, assuming defaults: %s", exc)
            found = {}
        if mig is not None:
            found["migStrategy"] = mig
        override = config.get("capabilities")
        if isinstance(override, Mapping):
            for key, value in override.items():
                if isinstance(value, Mapping) and isinstance(found.get(key), Mapping):
                    found[key] = {**found[key], **value}
                else:
                    found[key] = value
        return ClusterCapabilities.model_validate(found)

    async def _resources(self, group_version: str) -> set[str] | None:
        """Plural names the API serves at ``group_version``; None when it serves none."""
        try:
            listed = await self._request("GET", f"/apis/{group_version}", what="discover APIs")
        except _Gone:
            return None
        return {str(r.get("name")) for r in listed.get("resources") or ()}

    async def _discover_apis(self) -> tuple[dict[str, str], dict[str, Any] | None]:
        served: dict[str, str] = {}
        # Every Kubeflow kind berth renders, by the version it renders and any other one
        # (training-operator 1.x serves MPIJob at v1, the mpi-operator at v2beta1).
        versions = {
            version: await self._resources(f"kubeflow.org/{version}")
            for version in ("v2beta1", "v1")
        }
        for kind, api_version in {**TRAINING_OPERATOR_APIS, **MPI_OPERATOR_APIS}.items():
            plural = f"{kind.lower()}s"
            wanted = api_version.rsplit("/", 1)[1]
            for version in (wanted, *(v for v in versions if v != wanted)):
                if plural in (versions[version] or ()):
                    served[kind] = f"kubeflow.org/{version}"
                    break
        knative: dict[str, Any] | None = None
        if "services" in (await self._resources(labels.KNATIVE_API_VERSION) or ()):
            knative = await self._knative_features()
        return served, knative

    async def _knative_features(self) -> dict[str, Any]:
        path = f"{CONFIG_MAP.collection(KNATIVE_NAMESPACE)}/{KNATIVE_FEATURES_MAP}"
        try:
            features = await self._request("GET", path, what="read Knative's config-features")
        except _Gone:
            return {"features": {}}  # Knative's own defaults: every podspec flag disabled
        except PermanentError:
            # No right to read it: assume the flags berth documents as prerequisites.
            log.warning("cannot read %s/%s", KNATIVE_NAMESPACE, KNATIVE_FEATURES_MAP)
            return {"features": dict(KNATIVE_FEATURES)}
        data = features.get("data") or {}
        found = (features.get("metadata") or {}).get("labels") or {}
        return {
            "version": str(found.get("app.kubernetes.io/version", "")),
            "features": {k: str(v) for k, v in data.items() if not k.startswith("_")},
        }

    async def _discover_kai(self) -> dict[str, Any]:
        kai: dict[str, Any] = {}
        try:
            shards = await self._request("GET", SHARDS_PATH, what="list KAI's scheduling shards")
            kai["shards"] = sorted(
                str((item.get("spec") or {}).get("partitionLabelValue") or "")
                for item in shards.get("items") or ()
            )
        except _Gone:
            pass  # no SchedulingShard CRD: an unsharded scheduler
        try:
            classes = await self._request("GET", PRIORITY_CLASSES_PATH, what="list priorities")
            kai["priorityClasses"] = sorted(
                str((item.get("metadata") or {}).get("name")) for item in classes.get("items") or ()
            )
        except (_Gone, PermanentError):
            pass
        return kai

    async def _stored_config(self) -> dict[str, Any] | None:
        path = f"{CONFIG_MAP.collection(self._config_namespace)}/{self._config_map}"
        try:
            config_map = await self._request("GET", path, what="read the cluster config")
        except _Gone:
            return None
        text = (config_map.get("data") or {}).get("config") or "{}"
        loaded = yaml.safe_load(text)
        return loaded if isinstance(loaded, dict) else {}

    # --- requests -------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
        what: str,
        answer: bool = True,
    ) -> dict[str, Any]:
        """The response's object; ``{}`` without ``answer`` (the body is read, not decoded)."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        response = await self._send(
            method, path, list((query or {}).items()), headers, body, self._timeout, what
        )
        async with response:
            try:
                data = await response.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise translate(exc, what) from exc
        if not answer:
            return {}
        loaded = from_json(data) if data else {}
        return loaded if isinstance(loaded, dict) else {}

    async def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: Any,
        timeout: aiohttp.ClientTimeout,
        what: str,
    ) -> aiohttp.ClientResponse:
        """One API request through the rate limit; a 2xx response, or a berth error."""
        api = self._client()
        await self._bucket.acquire()
        self.calls += 1
        try:
            response = await api.send(method, path, query, headers, body, timeout)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise translate(exc, what) from exc
        if 200 <= response.status <= 299:
            return response
        async with response:
            text = await response.text()
        if response.status == 404:
            raise _Gone(what)
        error = ApiException(status=response.status, reason=response.reason)
        error.body = text.encode()
        raise translate(error, what)

    def _client(self) -> _PlainApiClient:
        if self._api is None:
            raise TransientError("the kubernetes backend is not started")
        return self._api

    # --- watching -------------------------------------------------------------------------------

    async def _watch(self, resource: Resource) -> None:
        delay = 1.0
        if resource is POD:
            # The pods are listed after every other kind: listed before a Job, the pods its
            # controller started meanwhile would be missing from the first whole view until
            # their watch caught up, and a running workload read as Creating (a restarted agent
            # reported it started again). Listed after, they are at least as new as their top
            # objects. Bounded within the first listing's bound: a kind that cannot be listed
            # does not keep the pods from being listed before what is listed is reported.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tops_listed.wait(), self._sync_timeout / 2)
        while True:
            try:
                version = await self._list(resource)
                self._mark_listed(resource)
                delay = 1.0
                await self._stream(resource, version)
            except asyncio.CancelledError:
                raise
            except _Gone:
                # The kind is not installed (no CRD): nothing of it can exist; look again later.
                self._mark_listed(resource)
                await asyncio.sleep(self._resync)
            except Exception:
                log.warning("watching %s failed; listing again", resource.plural, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _mark_listed(self, resource: Resource) -> None:
        self._listed.add(resource)
        if all(r in self._listed for r in WATCHED if r is not POD):
            self._tops_listed.set()
        if len(self._listed) == len(WATCHED):
            self._synced.set()
            self._release()

    def _release(self) -> None:
        if self._whole:
            return
        self._whole = True
        held, self._held = self._held, set()
        self._publish(held)

    async def _release_late(self) -> None:
        """A kind that cannot be listed (refused, say) must not silence every workload: past
        the bound, what is listed is published and the rest joins as it comes."""
        await asyncio.sleep(self._sync_timeout)
        if not self._whole:
            missing = sorted(r.plural for r in WATCHED if r not in self._listed)
            log.warning(
                "not listed after %.0fs: %s; reporting without them",
                self._sync_timeout,
                ", ".join(missing),
            )
            self._release()

    async def _list(self, resource: Resource) -> str:
        listing = await self._request(
            "GET",
            resource.collection(),
            query={"labelSelector": labels.WORKLOAD_ID_LABEL},
            what=f"list {resource.plural}",
        )
        items = {_key(obj): _typed(obj, resource) for obj in listing.get("items") or ()}
        seen = self._seen[resource]
        touched = {_workload(obj) for obj in [*seen.values(), *items.values()]}
        for key in list(seen):
            self._forget(resource, key)
        for key, obj in items.items():
            self._remember(resource, key, obj)
        self._publish(touched)
        return str((listing.get("metadata") or {}).get("resourceVersion", ""))

    async def _stream(self, resource: Resource, version: str) -> None:
        query = [
            ("labelSelector", labels.WORKLOAD_ID_LABEL),
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", version),
            ("timeoutSeconds", str(int(self._resync))),
        ]
        # The server ends the watch after timeoutSeconds; the read timeout only catches a
        # connection that died silently.
        timeout = aiohttp.ClientTimeout(total=None, sock_read=self._resync + 30)
        headers = {"Accept": "application/json"}
        response = await self._send(
            "GET", resource.collection(), query, headers, None, timeout, f"watch {resource.plural}"
        )
        async with response:
            async for line in response.content:
                if not line.strip():
                    continue
                # Four or so events per workload: pydantic-core's parser, faster than json's.
                event = from_json(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    return  # e.g. 410 Gone: the version is too old; list again
                if kind == "BOOKMARK":
                    continue
                obj = _typed(obj, resource)
                key = _key(obj)
                self._forget(resource, key)
                if kind != "DELETED":
                    self._remember(resource, key, obj)
                self._publish({_workload(obj)})

    # --- snapshots ------------------------------------------------------------------------------

    def _remember(self, resource: Resource, key: tuple[str, str], obj: dict[str, Any]) -> None:
        self._seen[resource][key] = obj
        self._by_workload.setdefault(_workload(obj), {}).setdefault(resource, set()).add(key)
        if resource is POD:
            self._statuses[key] = pod_status(obj)

    def _forget(self, resource: Resource, key: tuple[str, str]) -> None:
        obj = self._seen[resource].pop(key, None)
        if obj is None:
            return
        if resource is POD:
            del self._statuses[key]
        workload = _workload(obj)
        keys = self._by_workload.get(workload, {}).get(resource)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_workload[workload][resource]
                if not self._by_workload[workload]:
                    del self._by_workload[workload]

    def _objects(self, resource: Resource, workload: tuple[str, str]) -> list[dict[str, Any]]:
        keys = self._by_workload.get(workload, {}).get(resource, ())
        return [self._seen[resource][key] for key in sorted(keys)]

    def _top(self, namespace: str, workload_id: str) -> dict[str, Any] | None:
        found = self._by_workload.get((namespace, workload_id))
        if not found:
            return None
        for resource in WATCHED[1:]:
            keys = found.get(resource)
            if keys:
                return self._seen[resource][min(keys)]
        return None

    def _snapshot(self, namespace: str, workload_id: str) -> WorkloadSnapshot:
        pods = self._objects(POD, (namespace, workload_id))
        top = self._top(namespace, workload_id)
        return snapshot_of(workload_id, namespace, top, pods, self._status)

    def _status(self, pod: Mapping[str, Any]) -> PodStatus:
        return self._statuses[_key(pod)]

    def _publish(self, workloads: set[tuple[str, str]]) -> None:
        if not self._whole:
            # Each kind is listed by a watch of its own: until every first LIST is in, a
            # workload may show its top object without its pods, which reads as Creating for
            # one that runs (a restarted agent would report it started again). Held until the
            # cluster is seen whole.
            self._held |= workloads
            return
        for namespace, workload_id in sorted(workloads):
            if not workload_id:
                continue
            top = self._top(namespace, workload_id)
            pods = self._objects(POD, (namespace, workload_id))
            if top is None and pods:
                continue  # ahead of its top object (``_ahead_of_top``)
            self._feed.publish(snapshot_of(workload_id, namespace, top, pods, self._status))

    def _ahead_of_top(self, workload: tuple[str, str]) -> bool:
        """Pods seen, their top object not (yet): each kind has a watch of its own, and the
        pods' may deliver before the top object's. Such a workload is not gone; the top
        object's event tells where it is."""
        return self._top(*workload) is None and bool(self._objects(POD, workload))

    def _all_snapshots(self) -> list[WorkloadSnapshot]:
        if not self._whole:
            return []  # every workload is published once the first listing is whole
        known = [w for w in sorted(self._by_workload) if w[1] and not self._ahead_of_top(w)]
        return [self._snapshot(ns, wid) for ns, wid in known]


class _PlainApiClient(ApiClient):
    """kubernetes-asyncio's client, its requests sent around its generic ``call_api``: berth's
    bodies are dicts, lists and scalars only, which ``call_api`` walks node by node to the same
    thing and encodes with the stdlib's json, besides sanitising, tupling and regex-checking
    every request's headers and parameters (30 µs of the 230 µs of CPU an apply costs the
    agent; ``send`` takes 7). ``send`` encodes the body once with pydantic-core and goes
    through the client's own HTTP session, so the configured TLS (CA, client certificate,
    server name) and proxy hold, with the library's default headers and its credentials
    (``update_params_for_auth``, which first runs the refresh hook of exec plugins, OIDC and
    service-account tokens).

    Its HTTP session does not read the environment per request: kubernetes-asyncio's trusts it,
    and aiohttp then reads ``~/.netrc`` and the proxy variables in a worker thread on every
    request, two thread hops per apply (a quarter of the agent's CPU per apply). The proxy
    the environment names for the API server is resolved once here instead, as client-go
    resolves ``HTTPS_PROXY``/``NO_PROXY``; netrc never applies to an API server, whose
    requests carry their own credentials."""

    def __init__(self, configuration: Configuration) -> None:
        super().__init__(configuration)  # type: ignore[no-untyped-call]
        rest = self.rest_client
        session: aiohttp.ClientSession = rest.pool_manager
        if session.trust_env:
            # No public setter; the session is this client's own and has sent nothing yet.
            session._trust_env = False
            proxy, auth = (None, None) if rest.proxy else _env_proxy(str(configuration.host))
            if proxy is not None:
                rest.proxy = proxy
                if auth is not None:
                    rest.proxy_headers = {
                        **(rest.proxy_headers or {}),
                        "Proxy-Authorization": auth.encode(),
                    }

    async def send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: Any,
        timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        """The response to one request, unread, whatever its status."""
        # As ``call_api`` does: the client's default headers (its User-Agent) win.
        headers = {**headers, **self.default_headers}
        if self.cookie:
            headers["Cookie"] = self.cookie
        queries = list(query)
        await self.update_params_for_auth(  # type: ignore[no-untyped-call]
            headers, queries, ["BearerToken"]
        )
        url = f"{self.configuration.host}{path}"
        if queries:
            url = f"{url}?{urlencode(queries)}"
        rest = self.rest_client
        session: aiohttp.ClientSession = rest.pool_manager
        return await session.request(
            method,
            url,
            headers=headers,
            data=None if body is None else to_json(body),
            timeout=timeout,
            proxy=rest.proxy or None,
            proxy_headers=rest.proxy_headers or None,
            server_hostname=rest.server_hostname or None,
        )


def _env_proxy(host: str) -> tuple[str | None, aiohttp.BasicAuth | None]:
    """The proxy the environment names for ``host`` (``HTTPS_PROXY``, ``NO_PROXY``...)."""
    try:
        proxy, auth = get_env_proxy_for_url(URL(host))
    except LookupError:
        return None, None
    return str(proxy), auth


class _Gone(Exception):
    """404: the object (or the kind) does not exist."""


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def _typed(obj: dict[str, Any], resource: Resource) -> dict[str, Any]:
    # List items come without apiVersion and kind; the snapshot code needs them.
    obj.setdefault("apiVersion", resource.api_version)
    obj.setdefault("kind", resource.kind)
    return obj


def _owner_refs(obj: Mapping[str, Any], top: Mapping[str, Any]) -> bool:
    """Whether ``obj`` names ``top`` as an owner (and so needs its uid)."""
    name = top["metadata"]["name"]
    return any(r.get("name") == name for r in obj["metadata"].get("ownerReferences") or ())


def _workload(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    found = meta.get("labels") or {}
    return str(meta.get("namespace", "")), str(found.get(labels.WORKLOAD_ID_LABEL, ""))
