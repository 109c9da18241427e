"""The rules of real clusters beyond the CRD schemas: admission webhooks and controllers of KAI,
the Kubeflow operators, Knative and Kubernetes itself, as ``berth.contracts.runnable.check``
applies them and the renderer honours them."""

from __future__ import annotations

from typing import Any

import pytest

from berth.contracts.capabilities import (
    KNATIVE_FEATURES,
    ClusterCapabilities,
    KaiCapabilities,
    KnativeCapabilities,
)
from berth.contracts.queries import RenderRequest
from berth.contracts.runnable import check, knative_features
from berth.scheduler_adapter import labels
from berth.scheduler_adapter.handlers import render_query
from berth.scheduler_adapter.rendering import render
from berth.scheduler_adapter.simulation import Inventory
from berth.scheduler_adapter.simulation.cluster import SimulatedCluster
from tests.unit.scheduler_adapter.adapter_builders import manifests, ref, submission

pytestmark = pytest.mark.unit

IMAGE = "registry.example/train:1"
KAI = ClusterCapabilities()
KNATIVE = ClusterCapabilities(knative=KnativeCapabilities(features=dict(KNATIVE_FEATURES)))


def issues(
    kind: str, spec: dict[str, Any], caps: ClusterCapabilities | None = KAI, **top: Any
) -> list[str]:
    found = check(submission(kind, "w", {"image": IMAGE, **spec}, **top), caps, "local")
    return [f"{issue.field}: {issue.details}" for issue in found]


def test_a_plain_workload_of_every_kind_is_runnable() -> None:
    for kind in ("workspace", "training", "distributed", "inference"):
        assert issues(kind, {"compute": {"gpuDevicesRequest": 1}}) == []
        assert issues(kind, {"compute": {"gpuDevicesRequest": 1}}, KNATIVE) == []


# --- KAI ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("portion", [0.1, 0.25, 0.5, 0.99, 1.0])
def test_gpu_fraction_is_always_strictly_between_zero_and_one(portion: float) -> None:
    # KAI's gpu-request validator (pkg/binder/plugins/gpusharing/gpu-request) accepts only
    # 0 < gpu-fraction < 1; a portion of 1 is a whole device.
    (job,) = manifests("training", "t", portion=portion)
    pod = job["spec"]["template"]
    fraction = pod["metadata"]["annotations"].get(labels.GPU_FRACTION_ANNOTATION)
    limits = pod["spec"]["containers"][0]["resources"].get("limits", {})
    if portion < 1:
        assert fraction is not None and 0 < float(fraction) < 1
        assert labels.GPU_RESOURCE not in limits
    else:
        assert fraction is None
        assert limits[labels.GPU_RESOURCE] == "1"


def test_kai_has_no_gpu_limit_above_the_request() -> None:
    portion = {"gpuDevicesRequest": 1, "gpuPortionRequest": 0.5}
    assert issues("training", {"compute": {**portion, "gpuPortionLimit": 0.5}}) == []
    (found,) = issues("training", {"compute": {**portion, "gpuPortionLimit": 0.8}})
    assert found.startswith("spec.compute.gpuPortionLimit: KAI cannot let a pod burst")
    memory = {"gpuDevicesRequest": 1, "gpuMemoryRequest": "10G"}
    (found,) = issues("training", {"compute": {**memory, "gpuMemoryLimit": "20G"}})
    assert found.startswith("spec.compute.gpuMemoryLimit:")


def test_interactive_preemptible_is_kais_build_preemptible() -> None:
    (sts, *_) = manifests("workspace", "w", extra={"allowOverQuota": True})
    assert sts["metadata"]["labels"][labels.PRIORITY_CLASS_LABEL] == "build-preemptible"
    assert issues("workspace", {"allowOverQuota": True}) == []
    lacking = ClusterCapabilities(kai=KaiCapabilities(priorityClasses=["train"]))
    assert issues("workspace", {}, lacking) == [
        "spec.priorityClass: PriorityClass 'build' does not exist on cluster local"
    ]


def test_a_sharded_kai_schedules_a_workload_in_one_pool_with_a_shard() -> None:
    sharded = ClusterCapabilities(kai=KaiCapabilities(shards=["", "a100"]))
    assert issues("training", {"nodePools": ["a100"]}, sharded) == []
    assert issues("training", {"nodePools": ["a100", "default"]}, sharded) == [
        "spec.nodePools: cluster local runs a KAI scheduling shard per node pool and a workload "
        "is scheduled by one shard: name one node pool",
        "spec.nodePools: node pool 'default' has no KAI scheduling shard on cluster local",
    ]
    # Not sharded: the priority list is node affinity, and every pool can be used.
    assert issues("training", {"nodePools": ["a100", "default"]}) == []


def test_queues_per_pool_follow_kais_shard_convention() -> None:
    caps = ClusterCapabilities(kai=KaiCapabilities(shards=["a100"], queuePerNodePool=True))
    sub = submission("training", "t", {"image": IMAGE, "nodePools": ["a100"]})
    (job,) = render(ref("t"), sub, trace_id=None, capabilities=caps)
    for found in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert found[labels.QUEUE_LABEL] == "vision-queue-a100"
        assert found[labels.NODE_POOL_LABEL] == "a100"


def test_gpu_sharing_and_mig_need_the_cluster_to_offer_them() -> None:
    no_sharing = ClusterCapabilities(kai=KaiCapabilities(gpuSharing=False), migStrategy="single")
    assert issues(
        "training", {"compute": {"gpuDevicesRequest": 1, "gpuPortionRequest": 0.5}}, no_sharing
    ) == ["spec.compute: cluster local does not enable KAI's GPU sharing"]
    (found,) = issues(
        "training",
        {
            "compute": {
                "gpuDevicesRequest": 1,
                "gpuRequestType": "migProfile",
                "migProfile": "1g.5gb",
            }
        },
        no_sharing,
    )
    assert "MIG strategy single, not mixed" in found


# --- Kubeflow ------------------------------------------------------------------------------------


def test_mpijob_needs_the_mpi_operator() -> None:
    # training-operator 1.x serves MPIJob only at kubeflow.org/v1; berth renders v2beta1.
    training_operator_only = ClusterCapabilities(
        workloadApis={
            "PyTorchJob": "kubeflow.org/v1",
            "TFJob": "kubeflow.org/v1",
            "XGBoostJob": "kubeflow.org/v1",
            "MPIJob": "kubeflow.org/v1",
        }
    )
    assert issues("distributed", {"distributedFramework": "MPI"}, training_operator_only) == [
        "spec.distributedFramework: MPIJob needs the mpi-operator (kubeflow.org/v2beta1), which "
        "cluster local does not run (it serves MPIJob only at kubeflow.org/v1)"
    ]
    none = ClusterCapabilities(workloadApis={})
    (found,) = issues("distributed", {"distributedFramework": "TF"}, none)
    assert found.endswith(
        "TFJob needs the Kubeflow training-operator (kubeflow.org/v1), which "
        "cluster local does not run"
    )


def test_mpi_workers_with_a_command_of_their_own_are_refused() -> None:
    spec = {"distributedFramework": "MPI", "command": "python worker.py"}
    launcher = {"image": IMAGE, "command": "mpirun python worker.py"}
    (found,) = issues("distributed", spec, masterSpecSameAsWorker=False, masterSpec=launcher)
    assert found.startswith("spec.command: MPI workers run the mpi-operator's sshd")
    # With one spec, the command is the launcher's and the workers keep the entry point.
    assert issues("distributed", spec) == []


def test_a_container_needs_an_image() -> None:
    found = check(submission("training", "t", {}), None, "local")
    assert [(i.field, i.details) for i in found] == [("spec.image", "a container needs an image")]


def test_a_read_write_once_claim_is_not_shared_by_pods_on_several_nodes() -> None:
    claim = {"name": "ckpt", "path": "/ckpt"}
    (found,) = issues("distributed", {"numWorkers": 2, "storage": {"pvc": [claim]}})
    assert found.startswith("spec.storage.pvc[0]: a ReadWriteOnce claim mounted read-write by 3")
    shared = {**claim, "claimInfo": {"accessModes": {"readWriteMany": True}}}
    assert issues("distributed", {"numWorkers": 2, "storage": {"pvc": [shared]}}) == []
    assert issues("distributed", {"storage": {"pvc": [{**claim, "readOnly": True}]}}) == []
    scaled = {"autoscaling": {"minReplicas": 1, "maxReplicas": 3}, "storage": {"pvc": [claim]}}
    assert len(issues("inference", scaled)) == 1
    # One pod: ReadWriteOnce is fine.
    assert issues("training", {"storage": {"pvc": [claim]}}) == []
    assert issues("workspace", {"storage": {"pvc": [claim]}}) == []


def test_run_ai_fields_are_rendered_or_refused_by_name() -> None:
    (job,) = manifests("training", "t", extra={"createHomeDir": True})
    pod = job["spec"]["template"]["spec"]
    assert {"name": "home", "emptyDir": {}} in pod["volumes"]
    assert {"name": "HOME", "value": "/home/berth"} in pod["containers"][0]["env"]
    (found,) = issues("training", {"security": {"seccompProfileType": "Localhost"}})
    assert found.startswith("spec.security.seccompProfileType: a Localhost profile")
    (found,) = issues("training", {"security": {"uidGidSource": "fromIdpToken"}})
    assert found.startswith("spec.security.uidGidSource: berth does not read user and group")
    ids = {"uidGidSource": "fromIdpToken", "runAsUid": 1000, "runAsGid": 100}
    assert issues("training", {"security": ids}) == []
    (found,) = issues("workspace", {"autoDeletionTimeAfterCompletionSeconds": 60})
    assert found.startswith("spec.autoDeletionTimeAfterCompletionSeconds: a workspace runs")
    (found,) = issues("workspace", {"terminateAfterPreemption": True})
    assert found.startswith("spec.terminateAfterPreemption: only a training")
    # A training fails its Job on preemption through the Job's podFailurePolicy.
    assert issues("training", {"terminateAfterPreemption": True}) == []
    (job,) = manifests("training", "t", extra={"terminateAfterPreemption": False})
    assert job["spec"]["podFailurePolicy"]["rules"][0]["action"] == "Ignore"


# --- Knative -------------------------------------------------------------------------------------


def test_knative_serves_a_single_container_port() -> None:
    spec = {"servingPort": {"container": 8000}, "ports": [{"container": 9000}]}
    assert issues("inference", spec, KNATIVE) == [
        "spec.ports[0]: Knative serves one container port (8000); port 9000 cannot be exposed "
        "on cluster local"
    ]
    # Without Knative the Deployment's container exposes both.
    assert issues("inference", spec) == []
    # Even unchecked, the Knative Service the renderer writes has the serving port only.
    sub = submission("inference", "i", {"image": IMAGE, **spec})
    (service,) = render(ref("i", "inference"), sub, trace_id=None, capabilities=KNATIVE)
    ports = service["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert [port["containerPort"] for port in ports] == [8000]


def test_ports_of_every_kind_get_a_service() -> None:
    # Run:ai's ports and exposedUrls are tool connections for every kind, not only workspaces.
    tensorboard = {"ports": [{"container": 6006, "toolType": "tensorboard"}]}
    for kind in ("training", "distributed", "inference"):
        objects = manifests(kind, "k", extra=tensorboard)
        services = [o for o in objects if (o["apiVersion"], o["kind"]) == ("v1", "Service")]
        tool = [s for s in services if s["spec"]["ports"][0]["targetPort"] == 6006]
        assert len(tool) == 1, kind
        assert tool[0]["metadata"]["annotations"][labels.TOOL_TYPE_ANNOTATION] == "tensorboard"
        assert tool[0]["metadata"]["ownerReferences"][0]["name"] == "k"
    url = {"exposedUrls": [{"container": 6006}]}
    (found,) = issues("inference", url, KNATIVE)
    assert found.startswith("spec.exposedUrls[0]: Knative serves one container port (8000)")


@pytest.mark.parametrize("port", [8012, 8013, 8022, 9090, 9091, 8008])
def test_knative_reserved_ports_are_refused(port: int) -> None:
    assert issues("inference", {"servingPort": {"container": port}}, KNATIVE) == [
        f"spec.servingPort.container: port {port} is reserved by Knative"
    ]


def test_knative_reserved_environment_variables_are_refused() -> None:
    spec = {"environmentVariables": [{"name": "PORT", "value": "1"}]}
    assert issues("inference", spec, KNATIVE) == [
        "spec.environmentVariables[0]: PORT is set by Knative itself"
    ]


def test_knative_feature_flags_a_spec_needs_must_be_enabled() -> None:
    spec: dict[str, Any] = {
        "nodeType": "A100",
        "security": {"uidGidSource": "custom", "runAsUid": 1000, "capabilities": ["NET_ADMIN"]},
        "storage": {"pvc": [{"name": "m", "path": "/m"}]},
    }
    sub = submission("inference", "i", {"image": IMAGE, **spec})
    assert set(knative_features(sub.spec)) == {
        "kubernetes.podspec-schedulername",
        "kubernetes.podspec-nodeselector",
        "kubernetes.podspec-securitycontext",
        "kubernetes.containerspec-addcapabilities",
        "kubernetes.podspec-persistent-volume-claim",
        "kubernetes.podspec-persistent-volume-write",
    }
    assert issues("inference", spec, KNATIVE) == []
    defaults = ClusterCapabilities(knative=KnativeCapabilities(features={}))
    found = issues("inference", {}, defaults)
    assert found == [
        "spec: Knative feature kubernetes.podspec-schedulername is not enabled on cluster local"
    ]
    allowed = KnativeCapabilities(features={"kubernetes.podspec-schedulername": "Allowed"})
    assert issues("inference", {}, ClusterCapabilities(knative=allowed)) == []


# --- where the check runs ------------------------------------------------------------------------


async def test_a_dry_run_on_a_knative_cluster_names_the_extra_port() -> None:
    cluster = SimulatedCluster(
        Inventory.from_dict({"cluster": {"knative": True}, "nodePools": [{"name": "a100"}]})
    )
    spec = {"image": IMAGE, "servingPort": {"container": 8000}, "ports": [{"container": 9000}]}
    request = RenderRequest(
        workload=ref("i", "inference"), submission=submission("inference", "i", spec)
    )
    reply = await render_query(request, backend=cluster)
    assert reply.manifests == []
    assert [(i.field, i.details) for i in reply.issues or ()] == [
        (
            "spec.ports[0]",
            "Knative serves one container port (8000); port 9000 cannot be exposed on cluster "
            "cluster-1",
        )
    ]
    # The same spec on a cluster without Knative renders a Deployment exposing both ports.
    plain = SimulatedCluster(Inventory.from_dict({"nodePools": [{"name": "a100"}]}))
    reply = await render_query(request, backend=plain)
    assert reply.issues is None and reply.manifests[0]["kind"] == "Deployment"
