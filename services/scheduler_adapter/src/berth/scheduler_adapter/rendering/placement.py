"""Where a pod may run: node pools in priority order, node type, tolerations."""

from __future__ import annotations

from typing import Any

from berth.contracts.workload import BaseSpec, PodAffinity, Toleration
from berth.scheduler_adapter import labels


def _pool_term(values: list[str]) -> dict[str, Any]:
    return {
        "matchExpressions": [{"key": labels.NODE_POOL_LABEL, "operator": "In", "values": values}]
    }


def node_affinity(node_pools: list[str] | None) -> dict[str, Any] | None:
    if not node_pools:
        return None
    pools = list(dict.fromkeys(node_pools))
    # Required keeps the pod inside the allowed pools; descending weights make the scheduler
    # try them in the order the user listed (Run:ai's node-pool priority).
    preferred = [
        {"weight": max(1, 100 - index), "preference": _pool_term([pool])}
        for index, pool in enumerate(pools)
    ]
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [_pool_term(pools)]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": preferred,
        }
    }


def toleration(item: Toleration) -> dict[str, Any]:
    result: dict[str, Any] = {"operator": item.operator or "Equal"}
    if item.key is not None:
        result["key"] = item.key
    if item.value is not None:
        result["value"] = item.value
    if item.effect is not None:
        result["effect"] = item.effect
    if item.seconds is not None:
        result["tolerationSeconds"] = item.seconds
    return result


def pod_affinity(rule: PodAffinity | None, own_pods: dict[str, Any]) -> dict[str, Any] | None:
    """Run:ai's pod affinity: the workload's pods together on nodes sharing the value of the
    topology key ``rule.key`` (the same node, zone, ...). The first pod matches no other, which
    Kubernetes lets through for a term its own labels satisfy."""
    if rule is None:
        return None
    term = {"labelSelector": own_pods, "topologyKey": rule.key}
    if rule.type == "Required":
        return {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    return {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": term}
        ]
    }


def placement(spec: BaseSpec, own_pods: dict[str, Any]) -> dict[str, Any]:
    """Pod-spec fields that steer scheduling; ``own_pods`` selects the workload's pods."""
    result: dict[str, Any] = {}
    affinity = node_affinity(spec.nodePools) or {}
    together = pod_affinity(spec.podAffinity, own_pods)
    if together:
        affinity["podAffinity"] = together
    if affinity:
        result["affinity"] = affinity
    if spec.nodeType:
        result["nodeSelector"] = {labels.NODE_TYPE_LABEL: spec.nodeType}
    if spec.tolerations:
        result["tolerations"] = [toleration(item) for item in spec.tolerations]
    return result
