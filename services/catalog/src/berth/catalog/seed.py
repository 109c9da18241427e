"""The demo catalog a fresh install starts with."""

from __future__ import annotations

from typing import Any

DEPARTMENTS = [{"name": "research"}]

NODE_POOLS = [
    {"name": "a100", "label_key": "kai.scheduler/node-pool", "label_value": "a100"},
    {"name": "default", "label_key": "kai.scheduler/node-pool", "label_value": "default"},
]

PROJECTS = [
    {"name": "team-a", "department": "research", "default_node_pools": ["a100", "default"]},
    {"name": "team-b", "department": "research", "default_node_pools": ["default"]},
]

ASSETS: list[dict[str, Any]] = [
    {
        "kind": "environment",
        "name": "pytorch",
        "scope": "tenant",
        "spec": {
            "image": "pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime",
            "imagePullPolicy": "IfNotPresent",
            "workloadSupportedTypes": ["workspace", "training", "distributed"],
        },
    },
    {
        "kind": "compute",
        "name": "one-gpu",
        "scope": "tenant",
        "spec": {"gpuDevicesRequest": 1, "cpuCoreRequest": 4, "cpuMemoryRequest": "16G"},
    },
]


def project_row(project: dict[str, Any], cluster_id: str) -> dict[str, Any]:
    """Namespace and queue follow the Run:ai convention: runai-<project> / <project>."""
    return {
        "name": project["name"],
        "department": project.get("department"),
        "cluster_id": cluster_id,
        "namespace": f"berth-{project['name']}",
        "queue": project["name"],
        "default_node_pools": project.get("default_node_pools", []),
        "quota": project.get("quota", []),
    }
