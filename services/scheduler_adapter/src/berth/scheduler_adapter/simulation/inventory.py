"""What the simulated cluster is made of: node pools of identical nodes, and its public config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from berth.contracts.capabilities import (
    KNATIVE_FEATURES,
    ClusterCapabilities,
    KaiCapabilities,
    KnativeCapabilities,
)
from berth.scheduler_adapter.simulation.quantity import millis, units

KAI_VERSION = "v0.17.0"
TRAINING_OPERATOR_VERSION = "v1.9.0"
KNATIVE_VERSION = "1.23.0"


@dataclass(frozen=True)
class NodePoolSpec:
    name: str
    nodes: int = 2
    gpus_per_node: int = 8
    cpu: float = 64.0  # cores per node
    memory: str = "512Gi"  # per node
    node_type: str = ""  # node label run.ai/type
    label: str = ""  # value of the node-pool label; the pool's name when empty
    gpu_memory: str = "80Gi"  # per GPU; turns a gpu-memory request into a share of a device

    def __post_init__(self) -> None:
        if self.nodes < 0 or self.gpus_per_node < 0 or self.cpu < 0:
            raise ValueError(f"node pool {self.name}: sizes must not be negative")
        units(self.memory)
        units(self.gpu_memory)

    @property
    def label_value(self) -> str:
        return self.label or self.name

    @property
    def cpu_millis(self) -> int:
        return millis(self.cpu)

    @property
    def memory_bytes(self) -> int:
        return units(self.memory)

    @property
    def gpu_memory_mib(self) -> int:
        return max(1, units(self.gpu_memory) // 2**20)


_POOL_KEYS = {
    "name": "name",
    "nodes": "nodes",
    "gpusPerNode": "gpus_per_node",
    "cpu": "cpu",
    "memory": "memory",
    "nodeType": "node_type",
    "label": "label",
    "gpuMemory": "gpu_memory",
}
_CLUSTER_KEYS = {
    "workloadOwnershipProtection": "workload_ownership_protection",
    "knative": "knative",
    "version": "version",
}


def _renamed(data: Mapping[str, Any], keys: dict[str, str], where: str) -> dict[str, Any]:
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise ValueError(f"unknown {where} setting(s): {', '.join(unknown)}")
    return {keys[key]: value for key, value in data.items()}


@dataclass(frozen=True)
class Inventory:
    node_pools: tuple[NodePoolSpec, ...]
    workload_ownership_protection: bool = False
    knative: bool = False
    version: str = "1.29.0"
    extra_config: Mapping[str, Any] = field(default_factory=dict)
    # What the cluster reports it runs; None: the default_capabilities of this inventory.
    capabilities: ClusterCapabilities | None = None

    def __post_init__(self) -> None:
        labels = [pool.label_value for pool in self.node_pools]
        if len(set(labels)) != len(labels):
            raise ValueError("node pools must have distinct labels")

    def default_capabilities(self) -> ClusterCapabilities:
        """KAI with a scheduling shard per node pool (and the default shard for unlabelled
        nodes), the training-operator v1 and the mpi-operator, and Knative with every flag
        berth needs when ``knative`` is on. Every simulated node carries its pool's label, yet
        a workload that names no pool is placed in any pool, as if the default shard saw every
        node: a real cluster's default shard sees only unlabelled nodes."""
        knative = (
            KnativeCapabilities(version=KNATIVE_VERSION, features=dict(KNATIVE_FEATURES))
            if self.knative
            else None
        )
        shards = ["", *(pool.label_value for pool in self.node_pools)]
        return ClusterCapabilities(
            kai=KaiCapabilities(version=KAI_VERSION, shards=shards),
            trainingOperator=TRAINING_OPERATOR_VERSION,
            knative=knative,
        )

    @classmethod
    def default(
        cls,
        *,
        nodes_per_pool: int = 2,
        gpus_per_node: int = 8,
        cpu: float = 64.0,
        memory: str = "512Gi",
    ) -> Inventory:
        """Pools ``a100`` and ``default``: ``nodes_per_pool`` nodes of ``gpus_per_node`` GPUs."""
        return cls(
            node_pools=tuple(
                NodePoolSpec(
                    name=name,
                    nodes=nodes_per_pool,
                    gpus_per_node=gpus_per_node,
                    cpu=cpu,
                    memory=memory,
                    node_type=node_type,
                )
                for name, node_type in (("a100", "A100"), ("default", "generic"))
            )
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Inventory:
        """``{"cluster": {...}, "nodePools": [{"name", "nodes", "gpusPerNode", ...}],
        "capabilities": {...}}`` (capabilities as ``ClusterCapabilities``; optional)."""
        unknown = sorted(set(data) - {"cluster", "nodePools", "capabilities"})
        if unknown:
            raise ValueError(f"unknown inventory setting(s): {', '.join(unknown)}")
        # Cluster settings berth does not know yet are kept: a real cluster's public config can
        # carry any key, and set_config may add more.
        cluster = dict(data.get("cluster") or {})
        known = {_CLUSTER_KEYS[key]: cluster.pop(key) for key in _CLUSTER_KEYS if key in cluster}
        pools = tuple(
            NodePoolSpec(**_renamed(pool, _POOL_KEYS, "node pool"))
            for pool in data.get("nodePools") or ()
        )
        capabilities = data.get("capabilities")
        reported = (
            None if capabilities is None else ClusterCapabilities.model_validate(capabilities)
        )
        return cls(node_pools=pools, extra_config=cluster, capabilities=reported, **known)

    @classmethod
    def from_yaml(cls, text: str) -> Inventory:
        data = yaml.safe_load(text) or {}
        if not isinstance(data, Mapping):
            raise ValueError("an inventory document must be a mapping")
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Inventory:
        return cls.from_yaml(Path(path).read_text(encoding="utf-8"))

    @property
    def gpus(self) -> int:
        return sum(pool.nodes * pool.gpus_per_node for pool in self.node_pools)

    def config(self) -> dict[str, Any]:
        """The cluster's public config as a real cluster's ConfigMap would expose it."""
        return {
            **self.extra_config,
            "workloadOwnershipProtection": self.workload_ownership_protection,
            "knative": self.knative,
            "clusterVersion": self.version,
            "capabilities": (self.capabilities or self.default_capabilities()).model_dump(
                mode="json"
            ),
        }


def preset(name: str) -> Inventory:
    """A built-in inventory by name: ``default`` (pools a100 and default, 2 nodes of 8 GPUs
    each) or ``edge`` (a small site: one pool, 2 nodes of 4 T4 GPUs)."""
    if name == "default":
        return Inventory.default()
    if name == "edge":
        return Inventory(
            node_pools=(
                NodePoolSpec(
                    name="default",
                    nodes=2,
                    gpus_per_node=4,
                    cpu=32.0,
                    memory="256Gi",
                    node_type="T4",
                    gpu_memory="16Gi",
                ),
            )
        )
    raise ValueError(f"no inventory file or preset named {name!r} (presets: default, edge)")


def load_inventory(source: str | Path | None) -> Inventory:
    """An inventory from a YAML file, or a preset's name; the default one when None."""
    if source is None:
        return Inventory.default()
    if Path(source).is_file():
        return Inventory.load(source)
    return preset(str(source))
