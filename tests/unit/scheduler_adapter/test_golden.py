"""Golden tests: one submission per kind and option → the exact objects, kept as reviewed YAML.

Regenerate after an intended rendering change with ``BERTH_UPDATE_GOLDEN=1`` and review the
diff of ``golden/``. Every golden object also passes its strict schema (manifest_schemas).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.contracts.capabilities import KaiCapabilities
from berth.scheduler_adapter.rendering import ClusterCapabilities, from_config, render
from tests.unit.scheduler_adapter.adapter_builders import ref, submission
from tests.unit.scheduler_adapter.manifest_schemas import validate

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("BERTH_UPDATE_GOLDEN") == "1"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
IMAGE = "nvcr.io/nvidia/pytorch:24.05-py3"

STORAGE: dict[str, Any] = {
    "pvc": [
        {
            "name": "scratch",
            "path": "/scratch",
            "ephemeral": True,
            "claimInfo": {
                "size": "100Gi",
                "storageClass": "fast-ssd",
                "accessModes": {"readWriteOnce": True},
                "volumeMode": "Filesystem",
            },
        },
        {
            "name": "results",
            "path": "/results",
            "claimInfo": {"size": "1Ti", "accessModes": {"readWriteMany": True}},
        },
        {"name": "datasets", "path": "/datasets", "existingPvc": True, "claimName": "imagenet"},
    ],
    "git": [
        {
            "name": "code",
            "repository": "https://github.com/example/train.git",
            "branch": "main",
            "path": "/code",
            "passwordSecret": "git-creds",
        }
    ],
    "configMapVolume": [{"name": "conf", "configMap": "train-config", "mountPath": "/etc/train"}],
    "secretVolume": [{"name": "keys", "secret": "api-keys", "mountPath": "/etc/keys"}],
    "nfs": [{"name": "shared", "server": "nfs.example", "path": "/exports/a", "mountPath": "/nfs"}],
    "s3": [
        {
            "name": "bucket",
            "bucket": "models",
            "path": "/s3",
            "url": "https://s3.example",
            "accessKeySecret": "s3-creds",
        }
    ],
}

KNATIVE = from_config({"knative": True})

# name → (kind, spec, extra submission fields, the cluster's capabilities)
CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any], ClusterCapabilities]] = {
    "training-basic": (
        "training",
        {
            "image": IMAGE,
            "command": "python train.py",
            "args": "--epochs 3",
            "environmentVariables": [
                {"name": "EPOCHS", "value": "3"},
                {"name": "WANDB_KEY", "credential": {"name": "wandb", "key": "apiKey"}},
            ],
            "compute": {"gpuDevicesRequest": 2, "cpuCoreRequest": 4, "cpuMemoryRequest": "16Gi"},
            "nodePools": ["a100", "default"],
            "nodeType": "dgx",
            "labels": [{"name": "team", "value": "vision"}],
            "annotations": [{"name": "note", "value": "baseline"}],
        },
        {},
        ClusterCapabilities(),
    ),
    "training-fraction-hpo": (
        "training",
        {
            "image": IMAGE,
            "compute": {"gpuDevicesRequest": 1, "gpuPortionRequest": 0.5, "largeShmRequest": True},
            "completions": 4,
            "parallelism": 2,
            "backoffLimit": 2,
            "autoDeletionTimeAfterCompletionSeconds": 0,
        },
        {},
        ClusterCapabilities(),
    ),
    "training-storage": (
        "training",
        {"image": IMAGE, "compute": {"gpuDevicesRequest": 1}, "storage": STORAGE},
        {},
        ClusterCapabilities(),
    ),
    "training-gpu-memory": (
        "training",
        {
            "image": IMAGE,
            "compute": {
                "gpuDevicesRequest": 1,
                "gpuMemoryRequest": "10Gi",
                "cpuCoreLimit": 2.5,
                "cpuMemoryLimit": "8Gi",
            },
            "nodePools": ["default"],
        },
        {},
        ClusterCapabilities(),
    ),
    "training-mig": (
        "training",
        {
            "image": IMAGE,
            "compute": {
                "gpuDevicesRequest": 1,
                "migProfile": "1g.10gb",
                "extendedResources": [{"resource": "rdma/ib", "quantity": "1"}],
            },
            "tolerations": [
                {
                    "name": "gpu",
                    "key": "nvidia.com/gpu",
                    "operator": "Exists",
                    "effect": "NoSchedule",
                }
            ],
        },
        {},
        ClusterCapabilities(),
    ),
    "workspace-over-quota-secure": (
        "workspace",
        {
            "image": "jupyter/base-notebook",
            "compute": {"gpuDevicesRequest": 1, "gpuPortionRequest": 0.25},
            "allowOverQuota": True,
            "security": {
                "runAsUid": 1000,
                "runAsGid": 100,
                "runAsNonRoot": True,
                "capabilities": ["SYS_PTRACE"],
                "allowPrivilegeEscalation": False,
                "seccompProfileType": "RuntimeDefault",
            },
            "probes": {
                "readiness": {
                    "periodSeconds": 10,
                    "handler": {"httpGet": {"path": "/api", "port": 8888}},
                }
            },
            "ports": [{"container": 8888, "toolType": "jupyter-notebook"}],
        },
        {},
        ClusterCapabilities(),
    ),
    "workspace-tools": (
        "workspace",
        {
            "image": "jupyter/scipy-notebook",
            "compute": {"gpuDevicesRequest": 1},
            "ports": [
                {"container": 8888, "toolType": "jupyter-notebook", "toolName": "Jupyter"},
                {"container": 2222, "name": "ssh", "serviceType": "NodePort", "external": 30222},
            ],
            "exposedUrls": [
                {"container": 8888, "authorizedGroups": ["ml-team", "admins"]},
                {
                    "container": 8080,
                    "toolType": "vscode",
                    "toolName": "VS Code",
                    "authorizedUsers": ["alice@example.com"],
                },
            ],
            "storage": {
                "pvc": [{"name": "home", "path": "/home/jovyan", "claimInfo": {"size": "20Gi"}}]
            },
        },
        {},
        ClusterCapabilities(),
    ),
    "distributed-pytorch": (
        "distributed",
        {
            "image": IMAGE,
            "distributedFramework": "PyTorch",
            "numWorkers": 4,
            "compute": {"gpuDevicesRequest": 2},
            "nodePools": ["a100"],
        },
        {},
        ClusterCapabilities(),
    ),
    "distributed-pytorch-workers-only-elastic": (
        "distributed",
        {
            "image": IMAGE,
            "distributedFramework": "PyTorch",
            "numWorkers": 2,
            "minReplicas": 1,
            "maxReplicas": 4,
            "compute": {"gpuDevicesRequest": 1},
        },
        {"noMaster": True},
        ClusterCapabilities(),
    ),
    "distributed-tf-own-master": (
        "distributed",
        {
            "image": IMAGE,
            "distributedFramework": "TF",
            "numWorkers": 2,
            "compute": {"gpuDevicesRequest": 1},
        },
        {
            "masterSpecSameAsWorker": False,
            "masterSpec": {
                "image": "tensorflow/tensorflow:2.16.1",
                "environmentVariables": [{"name": "ROLE", "value": "chief"}],
                "compute": {"cpuCoreRequest": 2},
                "storage": {
                    "pvc": [{"name": "ckpt", "path": "/ckpt", "claimInfo": {"size": "50Gi"}}]
                },
            },
        },
        ClusterCapabilities(),
    ),
    "distributed-mpi": (
        "distributed",
        {
            "image": "mpioperator/mpi-pi:openmpi",
            "distributedFramework": "MPI",
            "numWorkers": 2,
            "slotsPerWorker": 4,
            "compute": {"gpuDevicesRequest": 4},
        },
        {"noMaster": True},
        ClusterCapabilities(),
    ),
    "distributed-xgboost": (
        "distributed",
        {"image": "kubeflow/xgboost:1.7", "distributedFramework": "XGBoost", "numWorkers": 3},
        {},
        ClusterCapabilities(),
    ),
    "distributed-mpi-launcher-command": (
        "distributed",
        {
            "image": "mpioperator/mpi-pi:openmpi",
            "command": "mpirun -np 8 python train.py",
            "distributedFramework": "MPI",
            "numWorkers": 2,
            "compute": {"gpuDevicesRequest": 4, "cpuCoreRequest": 8},
        },
        {},
        ClusterCapabilities(),
    ),
    "distributed-pytorch-workers-only": (
        "distributed",
        {"image": IMAGE, "distributedFramework": "PyTorch", "numWorkers": 3},
        {"noMaster": True},
        ClusterCapabilities(),
    ),
    "training-whole-gpu-portion": (
        "training",
        {
            "image": IMAGE,
            "compute": {
                "gpuDevicesRequest": 1,
                "gpuRequestType": "portion",
                "gpuPortionRequest": 1.0,
            },
        },
        {},
        ClusterCapabilities(),
    ),
    "training-runai-extras": (
        "training",
        {
            "image": IMAGE,
            "terminateAfterPreemption": True,
            "createHomeDir": True,
            "podAffinity": {"type": "Required", "key": "topology.kubernetes.io/zone"},
            "relatedUrls": [{"url": "https://wandb.example/run/1", "type": "wandb"}],
            "ports": [{"container": 6006, "toolType": "tensorboard"}],
            "storage": {"hostPath": [{"name": "data", "path": "/data", "mountPath": "/data"}]},
        },
        {},
        ClusterCapabilities(),
    ),
    "workspace-queue-per-pool": (
        "workspace",
        {"image": "jupyter/base-notebook:2024-05-27", "nodePools": ["a100"]},
        {},
        ClusterCapabilities(kai=KaiCapabilities(shards=["", "a100"], queuePerNodePool=True)),
    ),
    "inference-knative-scale-to-zero": (
        "inference",
        {
            "image": "vllm/vllm-openai:v0.6.3",
            "servingPort": {"container": 8000},
            "compute": {"gpuDevicesRequest": 1},
            "autoscaling": {
                "minReplicas": 0,
                "maxReplicas": 3,
                "metric": "concurrency",
                "metricThreshold": 8,
                "scaleToZeroRetentionSeconds": 300,
            },
            "model": {
                "catalog": "huggingface",
                "modelName": "meta-llama/Llama-3.1-8B-Instruct",
                "credential": {"name": "hf-token"},
            },
        },
        {},
        KNATIVE,
    ),
    "inference-knative-throughput": (
        "inference",
        {
            "image": "triton:24.05",
            "servingPort": {"container": 8001, "protocol": "grpc"},
            "autoscaling": {"minReplicas": 1, "maxReplicas": 5, "metric": "throughput"},
        },
        {},
        KNATIVE,
    ),
    "inference-knative-latency": (
        "inference",
        {
            "image": "triton:24.05",
            "autoscaling": {
                "minReplicas": 2,
                "maxReplicas": 6,
                "metric": "latency",
                "metricThreshold": 250,
            },
        },
        {},
        KNATIVE,
    ),
    "inference-deployment-hpa": (
        "inference",
        {
            "image": "vllm/vllm-openai:v0.6.3",
            "compute": {"gpuDevicesRequest": 1},
            "autoscaling": {"minReplicas": 0, "maxReplicas": 4, "metric": "throughput"},
            "model": {
                "catalog": "huggingface",
                "modelName": "mistralai/Mistral-7B-v0.1",
                "credential": {"name": "hf-token"},
            },
        },
        {},
        ClusterCapabilities(),
    ),
    "inference-deployment-fixed": (
        "inference",
        {"image": "nginx:1.27", "servingPort": {"container": 8080}},
        {},
        ClusterCapabilities(),
    ),
}


def rendered(case: str) -> list[dict[str, Any]]:
    kind, spec, top, capabilities = CASES[case]
    return render(
        ref(case, kind),
        submission(kind, case, spec, **top),
        trace_id=TRACE,
        capabilities=capabilities,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    objects = rendered(case)
    path = GOLDEN / f"{case}.yaml"
    if UPDATE:
        path.write_text(yaml.safe_dump_all(objects, sort_keys=False, width=100))
    assert path.exists(), f"{path.name} missing: run with BERTH_UPDATE_GOLDEN=1 and review it"
    assert objects == list(yaml.safe_load_all(path.read_text()))


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_objects_pass_their_schemas(case: str) -> None:
    validate(rendered(case))


def test_every_kind_and_custom_resource_is_covered() -> None:
    kinds = {(obj["apiVersion"], obj["kind"]) for case in CASES for obj in rendered(case)}
    assert kinds == {
        ("batch/v1", "Job"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("v1", "PersistentVolumeClaim"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("kubeflow.org/v1", "PyTorchJob"),
        ("kubeflow.org/v1", "TFJob"),
        ("kubeflow.org/v1", "XGBoostJob"),
        ("kubeflow.org/v2beta1", "MPIJob"),
        ("serving.knative.dev/v1", "Service"),
    }


def test_a_schema_violation_is_caught() -> None:
    service = rendered("inference-knative-throughput")[0]
    service["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(Exception, match="restartPolicy"):
        validate([service])
    job = rendered("distributed-pytorch")[0]
    job["spec"]["runPolicy"]["backoffLimit"] = "six"
    with pytest.raises(Exception, match="six"):
        validate([job])
