"""The kubernetes backend against the fake API server: apply, watch → phases, suspend/resume,
delete, error mapping, rate limit and API calls per workload."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient, Configuration
from pydantic import TypeAdapter

from berth.contracts.capabilities import MPI_OPERATOR_APIS, TRAINING_OPERATOR_APIS
from berth.contracts.events import WorkloadRef
from berth.contracts.workload import WorkloadSubmission
from berth.scheduler_adapter.backend import WorkloadSnapshot
from berth.scheduler_adapter.credentials import secret_object
from berth.scheduler_adapter.kubernetes import KubernetesCluster, TokenBucket
from berth.scheduler_adapter.phases import derive_phase
from berth.scheduler_adapter.rendering import ClusterCapabilities, render
from berth.shared.errors import PermanentError, TransientError
from tests.integration.scheduler_adapter.fake_apiserver import FakeApiServer

pytestmark = pytest.mark.integration

NS = "runai-team-b"
_SUBMISSION: TypeAdapter[Any] = TypeAdapter(WorkloadSubmission)


def workload(name: str, kind: str, spec: dict[str, Any], **top: Any) -> list[dict[str, Any]]:
    ref = WorkloadRef(
        workloadId=f"wl-{name}",
        name=name,
        kind=kind,  # type: ignore[arg-type]
        project="team-b",
        clusterId="local",
        namespace=NS,
        queue="team-b",
        createdBy="alice",
    )
    submission = _SUBMISSION.validate_python(
        {"kind": kind, "name": name, "projectId": "team-b", "spec": spec, **top}
    )
    return render(ref, submission, trace_id="t-1", capabilities=ClusterCapabilities())


@pytest.fixture
async def server() -> AsyncIterator[FakeApiServer]:
    fake = FakeApiServer(namespaces={"berth", NS})
    await fake.start()
    yield fake
    await fake.stop()


def cluster_for(server: FakeApiServer, **options: Any) -> KubernetesCluster:
    configuration = Configuration(host=server.url)
    return KubernetesCluster(configuration=configuration, **options)


@pytest.fixture
async def cluster(server: FakeApiServer) -> AsyncIterator[KubernetesCluster]:
    backend = cluster_for(server, resync_seconds=5, retries=0)
    await backend.start()
    await asyncio.wait_for(backend.wait_synced(), 5)
    yield backend
    await backend.close()


class Phases:
    """Phases derived from the backend's snapshots, per workload, as the adapter would."""

    def __init__(self, backend: KubernetesCluster) -> None:
        self.seen: dict[str, list[str]] = {}
        self.last: dict[str, WorkloadSnapshot] = {}
        self._task = asyncio.create_task(self._run(backend))

    async def _run(self, backend: KubernetesCluster) -> None:
        async for batch in backend.snapshots():
            for snapshot in batch:
                phase = derive_phase(snapshot)[0]
                phases = self.seen.setdefault(snapshot.workload_id, [])
                self.last[snapshot.workload_id] = snapshot
                if not phases or phases[-1] != phase:
                    phases.append(phase)

    async def until(self, workload_id: str, phase: str, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while phase not in self.seen.get(workload_id, []):
            if time.monotonic() > deadline:
                raise AssertionError(f"{workload_id} never {phase}: {self.seen.get(workload_id)}")
            await asyncio.sleep(0.02)
        return self.seen[workload_id]

    async def stop(self) -> None:
        self._task.cancel()


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


TRAINING = {"image": "img:1", "compute": {"gpuDevicesRequest": 1}}


async def test_training_applies_once_and_watch_maps_to_phases(
    server: FakeApiServer, cluster: KubernetesCluster
) -> None:
    phases = Phases(cluster)
    objects = workload("train", "training", TRAINING)
    before = len(server.calls())
    await cluster.apply(objects)
    assert len(server.calls()) - before == 1  # one server-side apply for a training
    [apply] = server.calls("PATCH")
    assert apply.content_type == "application/apply-patch+yaml"
    assert apply.query == {"fieldManager": "berth-scheduler-adapter", "force": "true"}
    assert apply.path == f"/apis/batch/v1/namespaces/{NS}/jobs/train"
    job = server.get("batch/v1", "jobs", NS, "train")
    await phases.until("wl-train", "Creating")

    message = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    await server.put_pod(NS, "train-x", job, reason="Unschedulable", message=message)
    await phases.until("wl-train", "Pending")
    assert derive_phase(phases.last["wl-train"])[1] == message
    await server.put_pod(NS, "train-x", job, scheduled=True, waiting="ContainerCreating")
    await phases.until("wl-train", "Initializing")
    await server.put_pod(NS, "train-x", job, phase="Running", scheduled=True, ready=True)
    await phases.until("wl-train", "Running")
    await server.put_pod(NS, "train-x", job, phase="Succeeded", scheduled=True)
    await server.set_status(
        "batch/v1", "jobs", NS, "train", {"conditions": [{"type": "Complete", "status": "True"}]}
    )
    seen = await phases.until("wl-train", "Completed")
    assert seen == ["Creating", "Pending", "Initializing", "Running", "Completed"]

    # Applying the same manifests again (a restart's resync) changes nothing on the server.
    version = job["metadata"]["resourceVersion"]
    await cluster.apply(objects)
    assert len(server.find("batch/v1", "jobs")) == 1
    assert server.get("batch/v1", "jobs", NS, "train")["metadata"]["resourceVersion"] == version
    await phases.stop()


async def test_a_restarted_backend_lists_the_top_objects_it_can_vouch_for(
    server: FakeApiServer, cluster: KubernetesCluster
) -> None:
    train = workload("listed-train", "training", TRAINING)
    tools = {"image": "img:1", "ports": [{"container": 8888, "toolType": "jupyter-notebook"}]}
    workspace = workload("listed-ws", "workspace", tools)
    await cluster.apply(train + workspace)

    restarted = cluster_for(server, resync_seconds=5, retries=0)
    await restarted.start()
    try:
        listing = await restarted.listed()
        assert listing.holds(train[0])
        [stateful_set] = [o for o in workspace if o["kind"] == "StatefulSet"]
        [service] = [o for o in workspace if o["kind"] == "Service"]
        assert listing.holds(stateful_set)
        # Tool Services are not watched: the listing cannot tell whether they are there.
        assert not listing.holds(service)
        assert not listing.holds(workload("never-applied", "training", TRAINING)[0])
    finally:
        await restarted.close()


async def test_a_restarted_backend_says_nothing_of_a_workload_until_every_kind_is_listed(
    server: FakeApiServer, cluster: KubernetesCluster
) -> None:
    """A restarted agent lists each kind on its own: a running Job listed before its pods read
    as Creating, and the workload was reported started again."""
    await cluster.apply(workload("steady", "training", TRAINING))
    job = server.get("batch/v1", "jobs", NS, "steady")
    await server.put_pod(NS, "steady-0", job, phase="Running", scheduled=True, ready=True)
    server.slow("GET", "/pods", 0.5)
    restarted = cluster_for(server, resync_seconds=5, retries=0)
    await restarted.start()
    phases = Phases(restarted)  # subscribed at once, as the agent does
    try:
        await phases.until("wl-steady", "Running")
        await asyncio.sleep(0.1)
        assert phases.seen["wl-steady"] == ["Running"]
    finally:
        await phases.stop()
        await restarted.close()


async def test_a_restarted_backend_lists_the_pods_after_every_other_kind(
    server: FakeApiServer, cluster: KubernetesCluster
) -> None:
    """Listed before a Job, the pods its controller started meanwhile were missing from the
    first whole view until their watch caught up: a running workload read as Creating, and a
    restarted agent reported it started again. Listed last, they are at least as new."""
    server.slow("GET", "/jobs", 0.5)
    before = len(server.calls("GET", "/pods"))
    restarted = cluster_for(server, resync_seconds=5, retries=0)
    started = time.monotonic()
    await restarted.start()
    try:
        while len(server.calls("GET", "/pods")) == before:
            await asyncio.sleep(0.01)
        assert time.monotonic() - started >= 0.45
        listing = await restarted.listed()
        assert listing.kinds is not None and ("batch/v1", "Job") in listing.kinds
    finally:
        await restarted.close()


async def test_a_kind_that_cannot_be_listed_is_left_out_of_the_listing(
    server: FakeApiServer,
) -> None:
    setup = cluster_for(server, resync_seconds=5, retries=0)
    await setup.start()
    train = workload("unlisted-train", "training", TRAINING)
    await setup.apply(train)
    await setup.close()

    server.fail("GET", "/jobs", 403, times=1000)
    backend = cluster_for(server, resync_seconds=5, retries=0, sync_timeout=0.5)
    await backend.start()
    try:
        listing = await backend.listed()
        # Not listed within the bound: the job may be there or not, so it is applied again.
        assert listing.kinds is not None
        assert ("batch/v1", "Job") not in listing.kinds
        assert ("apps/v1", "StatefulSet") in listing.kinds
        assert not listing.holds(train[0])
        # Nor does it silence the others: past the bound, what is listed is reported.
        phases = Phases(backend)
        await backend.apply(workload("unlisted-ws", "workspace", {"image": "img:1"}))
        await phases.until("wl-unlisted-ws", "Creating")
        await phases.stop()
    finally:
        await backend.close()


async def test_owned_objects_get_the_top_objects_uid_and_delete_collects_them(
    server: FakeApiServer, cluster: KubernetesCluster
) -> None:
    phases = Phases(cluster)
    spec = {
        "image": "img:1",
        "ports": [{"container": 8888, "toolType": "jupyter-notebook"}],
        "storage": {
            "pvc": [
                {"name": "tmp", "path": "/tmp/x", "ephemeral": True, "claimInfo": {"size": "1Gi"}},
                {"name": "home", "path": "/home", "claimInfo": {"size": "1Gi"}},
            ]
        },
    }
    objects = workload("ws", "workspace", spec)
    before = len(server.calls())
    await cluster.apply(objects)
    # StatefulSet + tool Service + two claims: within the five calls of the happy path.
    assert len(server.calls()) - before == 4 <= 5
    stateful_set = server.get("apps/v1", "statefulsets", NS, "ws")
    uid = stateful_set["metadata"]["uid"]
    [service] = server.find("v1", "services")
    assert service["metadata"]["ownerReferences"][0]["uid"] == uid
    ephemeral = server.get("v1", "persistentvolumeclaims", NS, "ws-pvc-tmp")
    assert ephemeral["metadata"]["ownerReferences"][0]["uid"] == uid
    await server.put_pod(NS, "ws-0", stateful_set, phase="Running", scheduled=True, ready=True)
    await phases.until("wl-ws", "Running")

    before = len(server.calls())
    await cluster.delete(NS, "wl-ws")
    [delete] = server.calls("DELETE")
    assert delete.path == f"/apis/apps/v1/namespaces/{NS}/statefulsets/ws"
    assert len(server.calls()) - before == 1
    await phases.until("wl-ws", "Deleted")
    # The garbage collector took the pod, the tool Service and the ephemeral claim; the
    # persistent claim outlives the workload.
    assert server.find("v1", "pods") == []
    assert server.find("v1", "services") == []
    claims = [c["metadata"]["name"] for c in server.find("v1", "persistentvolumeclaims")]
    assert claims == ["ws-pvc-home"]
    await cluster.delete(NS, "wl-ws")  # deleting again is a no-op
    await phases.stop()


async def test_distributed_training_is_one_call_and_reports_pending_gang(
    server: FakeApiServer, cluster: KubernetesCluster
) -> None:
    # KAI's podgrouper makes the PodGroup; berth applies the job alone.
    phases = Phases(cluster)
    spec = {
        "image": "img:1",
        "distributedFramework": "PyTorch",
        "numWorkers": 2,
        "compute": {"gpuDevicesRequest": 8},
    }
    before = len(server.calls())
    await cluster.apply(workload("dist", "distributed", spec))
    assert len(server.calls()) - before == 1
    job = server.get("kubeflow.org/v1", "pytorchjobs", NS, "dist")
    assert server.find("scheduling.run.ai/v2alpha2", "podgroups") == []
    reason = "Unschedulable"
    message = "no node in pools a100,default has 8 free GPUs"
    for pod in ("dist-master-0", "dist-worker-0", "dist-worker-1"):
        await server.put_pod(NS, pod, job, reason=reason, message=message)
    await phases.until("wl-dist", "Pending")
    phase, text, why, running, requested = derive_phase(phases.last["wl-dist"])
    assert (phase, text, why, running, requested) == ("Pending", message, reason, 0, 3)
    await phases.stop()


async def test_suspend_and_resume_patch_the_top_object(
    server: FakeApiServer, cluster: KubernetesCluster
) -> None:
    phases = Phases(cluster)
    await cluster.apply(workload("ws2", "workspace", {"image": "img:1"}))
    stateful_set = server.get("apps/v1", "statefulsets", NS, "ws2")
    await server.put_pod(NS, "ws2-0", stateful_set, phase="Running", scheduled=True, ready=True)
    await phases.until("wl-ws2", "Running")
    await eventually(lambda: cluster._top(NS, "wl-ws2") is not None)

    await cluster.suspend(NS, "wl-ws2")
    patch = server.calls("PATCH")[-1]
    assert patch.content_type == "application/merge-patch+json"
    stateful_set = server.get("apps/v1", "statefulsets", NS, "ws2")
    assert stateful_set["spec"]["replicas"] == 0
    await phases.until("wl-ws2", "Stopping")
    await server.remove("v1", "pods", NS, "ws2-0")
    await phases.until("wl-ws2", "Stopped")

    await eventually(
        lambda: (cluster._top(NS, "wl-ws2") or {}).get("spec", {}).get("replicas") == 0
    )
    await cluster.resume(NS, "wl-ws2")
    stateful_set = server.get("apps/v1", "statefulsets", NS, "ws2")
    assert stateful_set["spec"]["replicas"] == 1
    assert "berth.dev/suspended" not in stateful_set["metadata"]["annotations"]
    await phases.until("wl-ws2", "Creating")

    # A Job suspends through its own field.
    await cluster.apply(workload("job2", "training", TRAINING))
    await eventually(lambda: cluster._top(NS, "wl-job2") is not None)
    await cluster.suspend(NS, "wl-job2")
    assert server.get("batch/v1", "jobs", NS, "job2")["spec"]["suspend"] is True
    await phases.until("wl-job2", "Stopped")
    await phases.stop()


async def test_api_errors_are_translated_at_the_boundary(
    server: FakeApiServer, cluster: KubernetesCluster
) -> None:
    objects = workload("bad", "training", TRAINING)
    server.fail("PATCH", "/jobs/bad", 429)
    with pytest.raises(TransientError, match="429"):
        await cluster.apply(objects)
    server.fail("PATCH", "/jobs/bad", 503)
    with pytest.raises(TransientError, match="503"):
        await cluster.apply(objects)
    server.fail("PATCH", "/jobs/bad", 422)
    with pytest.raises(PermanentError, match="422 injected"):
        await cluster.apply(objects)
    server.fail("PATCH", "/jobs/bad", 409)
    with pytest.raises(PermanentError, match="409"):
        await cluster.apply(objects)
    # A permanent failure also reaches the workload's phase through the snapshots.
    phases = Phases(cluster)
    server.fail("PATCH", "/jobs/bad", 422)
    with pytest.raises(PermanentError):
        await cluster.apply(objects)
    await phases.until("wl-bad", "Failed")
    assert "422" in derive_phase(phases.last["wl-bad"])[1]
    await phases.stop()
    # A namespace that does not exist: apply answers 404, which retrying cannot fix.
    other = [dict(o, metadata={**o["metadata"], "namespace": "nowhere"}) for o in objects]
    with pytest.raises(PermanentError, match="namespace or resource kind not found"):
        await cluster.apply(other)
    # A kind whose CRD is missing (Knative here) is permanent too.
    knative = [
        {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": "k", "namespace": NS, "labels": {"berth.dev/workload-id": "wl-k"}},
        }
    ]
    with pytest.raises(PermanentError):
        await cluster.apply(knative)
    # A transient failure is retried before it reaches the caller.
    patient = cluster_for(server, retries=2, retry_delay=0.01)
    await patient.start()
    server.fail("PATCH", "/jobs/bad", 503, times=2)
    await patient.apply(objects)
    await patient.close()
    # The server going away is transient.
    await server.stop()
    with pytest.raises(TransientError):
        await cluster.apply(objects)


async def test_requests_skip_the_generic_client_path_and_keep_its_refreshed_credentials(
    server: FakeApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # call_api copies, encodes and checks every request generically (a tenth of the agent's CPU
    # per apply); the requests go around it, with the token the refresh hook (exec plugins,
    # OIDC) gives for each of them.
    async def generic(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a request went through ApiClient.call_api")

    monkeypatch.setattr(ApiClient, "call_api", generic)
    configuration = Configuration(host=server.url)
    configuration.api_key = {"BearerToken": "stale"}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    refreshed = 0

    def refresh(config: Configuration) -> None:
        nonlocal refreshed
        refreshed += 1
        config.api_key["BearerToken"] = f"token-{refreshed}"

    configuration.refresh_api_key_hook = refresh
    backend = KubernetesCluster(configuration=configuration, retries=0)
    objects = workload("auth", "training", TRAINING)
    try:
        await backend.start()
        await asyncio.wait_for(backend.wait_synced(), 5)
        await backend.apply(objects)
    finally:
        await backend.close()
    [apply] = server.calls("PATCH")
    assert apply.authorization == f"Bearer token-{refreshed}"
    tokens = [r.authorization for r in server.requests]
    assert len(set(tokens)) == len(tokens) == refreshed
    assert server.get("batch/v1", "jobs", NS, "auth")["spec"] == objects[0]["spec"]


async def test_requests_go_through_the_configured_proxy(server: FakeApiServer) -> None:
    # The API server's name resolves nowhere: only the proxy (the fake server, answering the
    # absolute URLs a proxy is sent) can answer.
    configuration = Configuration(host="http://api.cluster.invalid:6443")
    configuration.proxy = server.url
    backend = KubernetesCluster(configuration=configuration, retries=0)
    try:
        await backend.start()
        await asyncio.wait_for(backend.wait_synced(), 5)
        await backend.apply(workload("proxied", "training", TRAINING))
    finally:
        await backend.close()
    assert server.get("batch/v1", "jobs", NS, "proxied")


async def test_rate_limit_is_respected(server: FakeApiServer) -> None:
    backend = cluster_for(server, qps=20, burst=2, resync_seconds=30)
    await backend.start()
    await asyncio.wait_for(backend.wait_synced(), 10)
    started = time.monotonic()
    for index in range(6):
        await backend.apply(workload(f"r{index}", "training", TRAINING))
    elapsed = time.monotonic() - started
    await backend.close()
    # 6 calls with an empty bucket at 20/s take at least ~0.25 s; unlimited they take ms.
    assert elapsed >= 0.2


async def test_token_bucket_allows_burst_then_paces() -> None:
    bucket = TokenBucket(qps=50, burst=5)
    started = time.monotonic()
    for _ in range(5):
        await bucket.acquire()
    assert time.monotonic() - started < 0.05
    for _ in range(5):
        await bucket.acquire()
    assert time.monotonic() - started >= 0.08
    with pytest.raises(ValueError):
        TokenBucket(qps=0, burst=1)


async def test_config_is_read_from_and_written_to_the_config_map(
    server: FakeApiServer, cluster: KubernetesCluster
) -> None:
    config = await cluster.read_config()
    assert (config["knative"], config["nodePools"], config["gpus"]) == (False, [], 0)
    server.add_node("n1", "a100", 8)
    server.add_node("n2", "a100", 8)
    server.add_node("n3", None, 4)
    await cluster.set_config({"workloadOwnershipProtection": True, "knative": True})
    config_map = server.get("v1", "configmaps", "berth", "berth-public")
    assert "workloadOwnershipProtection: true" in config_map["data"]["config"]
    config = await cluster.read_config()
    assert config["workloadOwnershipProtection"] is True
    # What the cluster serves wins over what the config map says: no Knative API, no Knative.
    assert config["knative"] is False
    assert (config["nodePools"], config["gpus"]) == (["a100", "default"], 20)
    await cluster.set_config({"workloadOwnershipProtection": False})
    assert (await cluster.read_config())["workloadOwnershipProtection"] is False
    server.install_knative({"kubernetes.podspec-schedulername": "Enabled"})
    fresh = cluster_for(server)  # past the first one's config cache
    await fresh.start()
    try:
        config = await fresh.read_config()
    finally:
        await fresh.close()
    assert config["knative"] is True
    knative = ClusterCapabilities.model_validate(config["capabilities"]).knative
    assert knative is not None and knative.version == "1.23.0"
    assert knative.allows("kubernetes.podspec-schedulername")
    assert not knative.allows("kubernetes.podspec-affinity")


async def test_capabilities_are_discovered_from_the_api(
    server: FakeApiServer, cluster: KubernetesCluster
) -> None:
    caps = ClusterCapabilities.model_validate((await cluster.read_config())["capabilities"])
    assert caps.workloadApis == {**TRAINING_OPERATOR_APIS, **MPI_OPERATOR_APIS}
    assert caps.kai.shards is None and caps.knative is None
    assert caps.migStrategy == "none"  # no node says otherwise
    # training-operator 1.x alone: MPIJob at v1 only; KAI sharded per pool; its priorities.
    server.installed.discard(("kubeflow.org/v2beta1", "mpijobs"))
    server.installed.add(("kubeflow.org/v1", "mpijobs"))
    server.installed.add(("kai.scheduler/v1", "schedulingshards"))
    server.installed.add(("scheduling.k8s.io/v1", "priorityclasses"))
    for name, pool in (("default", None), ("a100", "a100")):
        spec = {"partitionLabelValue": pool} if pool else {}
        server.objects[("kai.scheduler/v1", "schedulingshards", "", name)] = {
            "metadata": {"name": name},
            "spec": spec,
        }
    for name in ("train", "build", "inference"):
        server.objects[("scheduling.k8s.io/v1", "priorityclasses", "", name)] = {
            "metadata": {"name": name}
        }
    # The config map may add what the API cannot tell.
    await cluster.set_config({"capabilities": {"kai": {"version": "v0.17.0"}}})
    caps = ClusterCapabilities.model_validate((await cluster.read_config())["capabilities"])
    assert caps.workloadApis["MPIJob"] == "kubeflow.org/v1"
    assert caps.kai.shards == ["", "a100"]
    assert caps.kai.priorityClasses == ["build", "inference", "train"]
    assert caps.kai.version == "v0.17.0"


async def test_credential_secrets_are_server_side_applied_and_outlive_workloads(
    server: FakeApiServer, cluster: KubernetesCluster
) -> None:
    secret = secret_object(NS, "berth-cred-hf", "credential-1", {"HF_TOKEN": "hf_v1"})
    await cluster.apply_secrets([secret])
    stored = server.get("v1", "secrets", NS, "berth-cred-hf")
    assert stored["type"] == "Opaque"
    assert stored["data"] == {"HF_TOKEN": base64.b64encode(b"hf_v1").decode()}
    assert stored["metadata"]["labels"]["berth.dev/credential-id"] == "credential-1"
    [call] = server.calls("PATCH", "/secrets/berth-cred-hf")
    assert call.path == f"/api/v1/namespaces/{NS}/secrets/berth-cred-hf"
    assert call.content_type == "application/apply-patch+yaml"
    assert call.query["fieldManager"] == "berth-scheduler-adapter"
    # A new value is applied over the old; the Secret belongs to no workload, so deleting one
    # that references it leaves it in place.
    await cluster.apply_secrets(
        [secret_object(NS, "berth-cred-hf", "credential-1", {"HF_TOKEN": "hf_v2"})]
    )
    assert server.get("v1", "secrets", NS, "berth-cred-hf")["data"]["HF_TOKEN"] == (
        base64.b64encode(b"hf_v2").decode()
    )
    objects = workload(
        "uses-hf",
        "training",
        {
            "image": "busybox",
            "environmentVariables": [
                {"name": "HF_TOKEN", "credential": {"name": "hf", "key": "HF_TOKEN"}}
            ],
        },
    )
    job = objects[0]["spec"]["template"]["spec"]["containers"][0]
    assert job["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "berth-cred-hf"
    await cluster.apply(objects)
    await cluster.delete(NS, "wl-uses-hf")
    assert server.get("v1", "secrets", NS, "berth-cred-hf")
    # A namespace that does not exist is the API's 404: a permanent error, named.
    with pytest.raises(PermanentError, match="apply Secret nowhere/berth-cred-hf"):
        await cluster.apply_secrets([secret_object("nowhere", "berth-cred-hf", "c", {"k": "v"})])


async def test_watch_resyncs_after_an_expired_version(server: FakeApiServer) -> None:
    backend = cluster_for(server, resync_seconds=1)
    await backend.start()
    await asyncio.wait_for(backend.wait_synced(), 5)
    phases = Phases(backend)
    await backend.apply(workload("gone", "training", TRAINING))
    job = server.get("batch/v1", "jobs", NS, "gone")
    await phases.until("wl-gone", "Creating")
    # Everything before now is compacted: the next watch gets 410 and must list again.
    server.oldest_version = 10**9
    await server.put_pod(NS, "gone-x", job, phase="Running", scheduled=True, ready=True)
    await phases.until("wl-gone", "Running", timeout=8)
    await phases.stop()
    await backend.close()


async def test_a_pod_seen_before_its_top_object_does_not_report_the_workload_gone(
    server: FakeApiServer, cluster: KubernetesCluster
) -> None:
    """Each kind has a watch of its own: the pods' may deliver before the Job's (a loaded API
    server, a slow stream). Reading that as "the workload is gone" turned it Deleted."""
    phases = Phases(cluster)
    [job] = workload("early", "training", TRAINING)
    job = {**job, "metadata": {**job["metadata"], "uid": "uid-early"}}
    await server.put_pod(NS, "early-0", job, reason="Unschedulable", message="wait")
    await eventually(lambda: bool(cluster.workload_pods("wl-early")))
    await asyncio.sleep(0.2)
    assert "wl-early" not in phases.seen  # nothing said about it until its top object shows
    await cluster.apply([job])
    seen = await phases.until("wl-early", "Pending")
    assert "Deleted" not in seen
    await phases.stop()
