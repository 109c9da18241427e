from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from berth.scheduler_adapter import labels
from berth.scheduler_adapter.rendering import render
from tests.unit.scheduler_adapter.adapter_builders import NAMESPACE, manifests, ref, submission

pytestmark = pytest.mark.unit

K8S_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())


def training_job(spec: dict[str, Any], *, trace_id: str | None = "trace-123") -> dict[str, Any]:
    objects = render(ref("train-1"), submission("training", "train-1", spec), trace_id=trace_id)
    assert len(objects) == 1
    return objects[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def test_training_job_golden() -> None:
    job = training_job(
        {
            "image": "nvcr.io/nvidia/pytorch:24.05",
            "command": "python train.py",
            "args": "--epochs 3 --name 'my run'",
            "environmentVariables": [
                {"name": "EPOCHS", "value": "3"},
                {"name": "DROPPED", "value": "x", "exclude": True},
            ],
            "compute": {"gpuDevicesRequest": 2, "cpuCoreRequest": 0.5, "cpuMemoryRequest": "8G"},
            "nodePools": ["a100", "h100", "default"],
            "labels": [{"name": "team", "value": "vision"}, {"name": "gone", "exclude": True}],
            "annotations": [{"name": "note", "value": "hello"}],
        }
    )
    expected_labels = {
        "team": "vision",
        labels.QUEUE_LABEL: "vision-queue",
        labels.NODE_POOL_LABEL: "a100",
        labels.WORKLOAD_ID_LABEL: "wl-train-1",
        labels.WORKLOAD_NAME_LABEL: "train-1",
        labels.PROJECT_LABEL: "vision",
    }
    annotations = {
        "note": "hello",
        labels.WORKLOAD_ID_ANNOTATION: "wl-train-1",
        labels.TRACE_ID_ANNOTATION: "trace-123",
    }

    def pool(values: list[str]) -> dict[str, Any]:
        return {
            "matchExpressions": [
                {"key": labels.NODE_POOL_LABEL, "operator": "In", "values": values}
            ]
        }

    assert job == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "train-1",
            "namespace": NAMESPACE,
            "labels": expected_labels,
            "annotations": annotations,
        },
        "spec": {
            "backoffLimit": 6,
            "ttlSecondsAfterFinished": 2592000,
            "template": {
                "metadata": {"labels": expected_labels, "annotations": annotations},
                "spec": {
                    "schedulerName": "kai-scheduler",
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "train-1",
                            "image": "nvcr.io/nvidia/pytorch:24.05",
                            "command": ["python", "train.py"],
                            "args": ["--epochs", "3", "--name", "my run"],
                            "env": [{"name": "EPOCHS", "value": "3"}],
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "8G"},
                                "limits": {"nvidia.com/gpu": "2"},
                            },
                        }
                    ],
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [pool(["a100", "h100", "default"])]
                            },
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {"weight": 100, "preference": pool(["a100"])},
                                {"weight": 99, "preference": pool(["h100"])},
                                {"weight": 98, "preference": pool(["default"])},
                            ],
                        }
                    },
                },
            },
        },
    }


def test_backoff_and_ttl_come_from_the_spec() -> None:
    job = training_job(
        {"image": "busybox", "backoffLimit": 2, "autoDeletionTimeAfterCompletionSeconds": 0}
    )
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["ttlSecondsAfterFinished"] == 0


def test_gpu_portion_is_a_kai_annotation_not_a_device_limit() -> None:
    job = training_job(
        {"image": "busybox", "compute": {"gpuDevicesRequest": 1, "gpuPortionRequest": 0.5}}
    )
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert annotations[labels.GPU_FRACTION_ANNOTATION] == "0.5"
    assert labels.GPU_RESOURCE not in pod_spec(job)["containers"][0]["resources"].get("limits", {})


def test_gpu_memory_is_a_kai_annotation_in_mebibytes() -> None:
    job = training_job(
        {"image": "busybox", "compute": {"gpuDevicesRequest": 1, "gpuMemoryRequest": "4Gi"}}
    )
    assert (
        job["spec"]["template"]["metadata"]["annotations"][labels.GPU_MEMORY_ANNOTATION] == "4096"
    )


def test_no_trace_id_no_annotation_and_no_pools_no_affinity() -> None:
    job = training_job({"image": "busybox"}, trace_id=None)
    assert labels.TRACE_ID_ANNOTATION not in job["metadata"]["annotations"]
    assert labels.TRACE_ID_ANNOTATION not in job["spec"]["template"]["metadata"]["annotations"]
    assert "affinity" not in pod_spec(job)
    assert labels.NODE_POOL_LABEL not in job["metadata"]["labels"]


def test_user_labels_cannot_overwrite_identity_or_queue() -> None:
    job = training_job(
        {
            "image": "busybox",
            "labels": [
                {"name": labels.WORKLOAD_ID_LABEL, "value": "spoofed"},
                {"name": labels.QUEUE_LABEL, "value": "someone-elses"},
            ],
        }
    )
    assert job["metadata"]["labels"][labels.WORKLOAD_ID_LABEL] == "wl-train-1"
    assert job["metadata"]["labels"][labels.QUEUE_LABEL] == "vision-queue"


def test_credentials_become_secret_references_and_extras_are_rendered() -> None:
    job = training_job(
        {
            "image": "busybox",
            "imagePullPolicy": "Always",
            "workingDir": "/work",
            "environmentVariables": [
                {"name": "HF_TOKEN", "credential": {"name": "hf-token", "key": "token"}}
            ],
            "nodeType": "dgx",
            "tolerations": [{"name": "gpu", "key": "nvidia.com/gpu", "operator": "Exists"}],
            "compute": {"cpuCoreLimit": 2, "cpuMemoryLimit": "16G", "largeShmRequest": True},
            "priorityClass": "train",
            "completions": 4,
            "parallelism": 2,
        }
    )
    spec = pod_spec(job)
    container = spec["containers"][0]
    assert container["env"] == [
        {
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "berth-cred-hf-token", "key": "token"}},
        }
    ]
    assert container["imagePullPolicy"] == "Always"
    assert container["workingDir"] == "/work"
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "16G"}
    assert container["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]
    assert spec["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    assert spec["nodeSelector"] == {labels.NODE_TYPE_LABEL: "dgx"}
    assert spec["tolerations"] == [{"operator": "Exists", "key": "nvidia.com/gpu"}]
    assert job["metadata"]["labels"][labels.PRIORITY_CLASS_LABEL] == "train"
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (4, 2)


def test_unbalanced_quotes_fall_back_to_whitespace_split() -> None:
    job = training_job({"image": "busybox", "command": "echo 'oops"})
    assert pod_spec(job)["containers"][0]["command"] == ["echo", "'oops"]


def test_workspace_is_a_single_replica_stateful_set() -> None:
    [sts] = manifests("workspace", "nb-1", gpus=1)
    assert (sts["apiVersion"], sts["kind"]) == ("apps/v1", "StatefulSet")
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["selector"] == {"matchLabels": {labels.WORKLOAD_ID_LABEL: "wl-nb-1"}}
    assert pod_spec(sts)["restartPolicy"] == "Always"
    assert pod_spec(sts)["schedulerName"] == "kai-scheduler"
    assert sts["metadata"]["labels"][labels.PRIORITY_CLASS_LABEL] == "build"


@pytest.mark.parametrize(
    ("framework", "api_version", "kind", "replica_key", "master_role"),
    [
        ("PyTorch", "kubeflow.org/v1", "PyTorchJob", "pytorchReplicaSpecs", "Master"),
        ("TF", "kubeflow.org/v1", "TFJob", "tfReplicaSpecs", "Chief"),
        ("XGBoost", "kubeflow.org/v1", "XGBoostJob", "xgbReplicaSpecs", "Master"),
        ("MPI", "kubeflow.org/v2beta1", "MPIJob", "mpiReplicaSpecs", "Launcher"),
    ],
)
def test_distributed_renders_kubeflow_job_and_leaves_the_gang_to_kai(
    framework: str, api_version: str, kind: str, replica_key: str, master_role: str
) -> None:
    # KAI's podgrouper builds the PodGroup and points the pods at it; berth renders neither.
    (job,) = manifests(
        "distributed", "dist-1", gpus=1, extra={"distributedFramework": framework, "numWorkers": 3}
    )
    assert (job["apiVersion"], job["kind"]) == (api_version, kind)
    replicas = job["spec"][replica_key]
    assert replicas[master_role]["replicas"] == 1
    assert replicas["Worker"]["replicas"] == 3
    assert job["spec"]["runPolicy"] == {"backoffLimit": 6, "ttlSecondsAfterFinished": 2592000}
    for replica in replicas.values():
        annotations = replica["template"]["metadata"]["annotations"]
        assert labels.POD_GROUP_ANNOTATION not in annotations
        assert replica["template"]["spec"]["schedulerName"] == "kai-scheduler"


def test_distributed_workers_only_and_own_master_spec() -> None:
    (workers_only,) = manifests(
        "distributed", "dist-2", gpus=1, extra={"numWorkers": 2}, top={"noMaster": True}
    )
    assert list(workers_only["spec"]["pytorchReplicaSpecs"]) == ["Worker"]
    # The training-operator gives a masterless job its rendezvous only through elastic mode.
    assert workers_only["spec"]["elasticPolicy"] == {"minReplicas": 2, "maxReplicas": 2}
    (job,) = manifests(
        "distributed",
        "dist-3",
        gpus=2,
        extra={"numWorkers": 2},
        top={"masterSpecSameAsWorker": False, "masterSpec": {"image": "master:1"}},
    )
    master = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    assert master["image"] == "master:1"
    assert "limits" not in master["resources"]
    assert "elasticPolicy" not in job["spec"]


def test_xgboost_always_has_a_master() -> None:
    (job,) = manifests("distributed", "xgb", gpus=1, extra={"distributedFramework": "XGBoost"})
    assert set(job["spec"]["xgbReplicaSpecs"]) == {"Master", "Worker"}


def test_mpi_launcher_runs_the_command_without_gpus_and_workers_keep_sshd() -> None:
    (job,) = manifests(
        "distributed",
        "mpi",
        gpus=2,
        extra={"distributedFramework": "MPI", "command": "mpirun python x.py", "numWorkers": 2},
    )
    launcher = job["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    worker = job["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    assert launcher["command"] == ["mpirun", "python", "x.py"]
    assert labels.GPU_RESOURCE not in launcher["resources"].get("limits", {})
    assert "command" not in worker
    assert worker["resources"]["limits"][labels.GPU_RESOURCE] == "2"


def test_inference_is_deployment_and_service_on_the_serving_port() -> None:
    deployment, service = manifests(
        "inference",
        "llm-1",
        gpus=1,
        extra={"servingPort": {"container": 9000, "protocol": "grpc"}},
    )
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    container = pod_spec(deployment)["containers"][0]
    assert container["ports"] == [{"containerPort": 9000, "protocol": "TCP", "name": "grpc"}]
    assert service["spec"]["ports"][0]["port"] == 9000
    assert service["spec"]["selector"] == {labels.WORKLOAD_ID_LABEL: "wl-llm-1"}
    _, default_port = manifests("inference", "llm-2")
    assert default_port["spec"]["ports"][0]["port"] == 8000


def _core_objects() -> list[dict[str, Any]]:
    rich = {
        "command": "python serve.py",
        "args": "--port 9000",
        "environmentVariables": [
            {"name": "A", "value": "1"},
            {"name": "B", "credential": {"name": "creds", "key": "b"}},
        ],
        "labels": [{"name": "team", "value": "vision"}],
        "annotations": [{"name": "note", "value": "x"}],
        "tolerations": [
            {"name": "t", "key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}
        ],
        "security": {"runAsUid": 1000, "uidGidSource": "custom", "capabilities": ["NET_ADMIN"]},
        "ports": [{"container": 8888, "name": "jupyter"}],
        "probes": {"readiness": {"handler": {"httpGet": {"path": "/health"}}}},
    }
    return [
        *manifests("training", "t-1", gpus=2, pools=["a100", "default"], extra=rich),
        *manifests("training", "t-2", portion=0.25, extra={"compute": {"cpuCoreRequest": 1.5}}),
        *manifests("workspace", "w-1", gpus=1, pools=["a100"], extra=rich),
        *manifests("inference", "i-1", gpus=1, extra={"command": "serve"}),
    ]


def _distributed_pod_templates() -> list[dict[str, Any]]:
    """Kubeflow jobs are custom resources; their pod templates are core and checked as such."""
    templates = []
    for framework in ("PyTorch", "TF", "MPI", "XGBoost"):
        (job,) = manifests("distributed", "d-2", gpus=1, extra={"distributedFramework": framework})
        replica_specs = next(v for k, v in job["spec"].items() if k.endswith("ReplicaSpecs"))
        for replica in replica_specs.values():
            templates.append(
                {
                    "apiVersion": "v1",
                    "kind": "PodTemplate",
                    "metadata": {"name": "t", "namespace": NAMESPACE},
                    "template": replica["template"],
                }
            )
    return templates


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_core_objects_validate_strictly(version: str) -> None:
    objects = _core_objects() + _distributed_pod_templates()
    assert {obj["kind"] for obj in objects} >= {
        "Job",
        "StatefulSet",
        "Deployment",
        "Service",
        "PodTemplate",
    }
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)
