"""Sample submissions shared by the contract tests, one rich example per kind."""

from __future__ import annotations

from typing import Any

import pytest

# Shaped after the Run:ai 2.18 creation-request examples, plus berth's additions.
WORKSPACE: dict[str, Any] = {
    "name": "jupyter-1",
    "projectId": "team-a",
    "clusterId": "71f69d83-ba66-4822-adf5-55ce55efd210",
    "kind": "workspace",
    "template": "notebook",
    "spec": {
        "image": "jupyter/scipy-notebook",
        "imagePullPolicy": "IfNotPresent",
        "command": "start-notebook.sh",
        "args": "--NotebookApp.base_url=/${RUNAI_PROJECT}/${RUNAI_JOB_NAME}",
        "workingDir": "/home/jovyan",
        "environmentVariables": [
            {"name": "MODE", "value": "dev"},
            {"name": "HF_TOKEN", "credential": {"name": "hf-token", "key": "token"}},
            {"name": "POLICY_VAR", "exclude": True},
        ],
        "compute": {
            "gpuDevicesRequest": 1,
            "gpuRequestType": "portion",
            "gpuPortionRequest": 0.5,
            "gpuPortionLimit": 1,
            "cpuCoreRequest": 2,
            "cpuCoreLimit": 4,
            "cpuMemoryRequest": "8G",
            "cpuMemoryLimit": "16Gi",
            "largeShmRequest": True,
            "extendedResources": [{"resource": "example.com/nic", "quantity": "1"}],
        },
        "exposedUrls": [
            {
                "container": 8888,
                "toolType": "jupyter-notebook",
                "toolName": "Jupyter",
                "authorizedGroups": ["team-a"],
            }
        ],
        "ports": [{"container": 6006, "serviceType": "NodePort", "toolType": "tensorboard"}],
        "storage": {
            "pvc": [
                {
                    "name": "home",
                    "claimName": "home-alice",
                    "existingPvc": False,
                    "path": "/home/jovyan/work",
                    "claimInfo": {
                        "size": "50G",
                        "storageClass": "standard",
                        "accessModes": {"readWriteOnce": True},
                        "volumeMode": "Filesystem",
                    },
                }
            ],
            "git": [{"repository": "https://github.com/org/repo.git", "path": "/code"}],
            "s3": [{"bucket": "datasets", "path": "/data", "accessKeySecret": "s3-creds"}],
            "nfs": [{"server": "nfs.local", "path": "/exports/x", "mountPath": "/nfs"}],
        },
        "security": {"uidGidSource": "custom", "runAsUid": 1000, "runAsGid": 100},
        "nodePools": ["a100-pool", "default"],
        "tolerations": [{"name": "gpu", "key": "nvidia.com/gpu", "operator": "Exists"}],
        "priorityClass": "build",
        "backoffLimit": 3,
        "autoDeletionTimeAfterCompletionSeconds": 0,
        "annotations": [{"name": "team", "value": "vision"}],
        "labels": [{"name": "cost-center", "value": "cc-17"}],
    },
}

DISTRIBUTED: dict[str, Any] = {
    "name": "dist-train1",
    "projectId": "team-a",
    "kind": "distributed",
    "spec": {
        "compute": {
            "cpuCoreRequest": 0.1,
            "gpuRequestType": "portion",
            "cpuMemoryRequest": "100M",
            "gpuDevicesRequest": 1,
            "gpuPortionRequest": 0.1,
        },
        "image": "kubeflow/pytorch-dist-mnist:latest",
        "numWorkers": 2,
        "distributedFramework": "PyTorch",
        "minReplicas": 1,
        "maxReplicas": 4,
    },
    "masterSpecSameAsWorker": False,
    "masterSpec": {
        "image": "kubeflow/pytorch-dist-mnist:latest",
        "command": "python master.py",
        "environmentVariables": [{"name": "ROLE", "value": "master"}],
        "compute": {"cpuCoreRequest": 1, "gpuDevicesRequest": 0},
        "storage": {"pvc": [{"existingPvc": True, "claimName": "ckpt", "path": "/ckpt"}]},
    },
}

INFERENCE: dict[str, Any] = {
    "name": "llama-svc",
    "projectId": "team-a",
    "kind": "inference",
    "spec": {
        "image": "vllm/vllm-openai:latest",
        "args": "--model meta-llama/Llama-3.1-8B-Instruct",
        "servingPort": {"container": 8000, "protocol": "http"},
        "autoscaling": {
            "minReplicas": 0,
            "maxReplicas": 4,
            "metric": "concurrency",
            "metricThreshold": 100,
            "scaleToZeroRetentionSeconds": 300,
        },
        "model": {
            "catalog": "huggingface",
            "modelName": "meta-llama/Llama-3.1-8B-Instruct",
            "credential": {"name": "hf-token"},
        },
        "compute": {"gpuDevicesRequest": 1},
        "storage": {"pvc": [{"existingPvc": True, "claimName": "models", "path": "/models"}]},
        "autoDeletionTimeAfterCompletionSeconds": 3600,
    },
}

TRAINING: dict[str, Any] = {
    "name": "train-1",
    "projectId": "team-a",
    "kind": "training",
    "spec": {
        "image": "pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime",
        "command": "python train.py",
        "compute": {"gpuDevicesRequest": 2, "cpuMemoryRequest": "32Gi"},
        "priorityClass": "train",
        "completions": 4,
        "parallelism": 2,
        "terminateAfterPreemption": True,
    },
}

SAMPLE_SUBMISSIONS: dict[str, dict[str, Any]] = {
    "workspace": WORKSPACE,
    "training": TRAINING,
    "distributed": DISTRIBUTED,
    "inference": INFERENCE,
}


@pytest.fixture
def sample_submissions() -> dict[str, dict[str, Any]]:
    return SAMPLE_SUBMISSIONS
