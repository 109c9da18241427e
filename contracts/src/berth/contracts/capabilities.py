"""What a cluster can run beyond core Kubernetes, as its agent discovers it.

The agent reports these with its config (``ClusterConfigReportedData.capabilities``); rendering
and ``berth.contracts.runnable.check`` read them. Every field has a default that describes the
cluster berth was designed against (KAI with its default priority classes and GPU sharing, the
Kubeflow training-operator v1 and the standalone mpi-operator, no Knative), so a report that
leaves something out still describes a cluster that exists.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# KAI's node-pool label; nodes, PodGroups and Queues of a scheduling shard carry its value.
NODE_POOL_LABEL = "kai.scheduler/node-pool"

KAI_PRIORITY_CLASSES: tuple[str, ...] = ("train", "build-preemptible", "build", "inference")
"""PriorityClasses KAI's chart installs (deployments/kai-scheduler/templates/priorityclasses)."""

TRAINING_OPERATOR_APIS: dict[str, str] = {
    "PyTorchJob": "kubeflow.org/v1",
    "TFJob": "kubeflow.org/v1",
    "XGBoostJob": "kubeflow.org/v1",
}
MPI_OPERATOR_APIS: dict[str, str] = {"MPIJob": "kubeflow.org/v2beta1"}

KNATIVE_FEATURES: dict[str, str] = {
    "kubernetes.podspec-schedulername": "enabled",
    "kubernetes.podspec-affinity": "enabled",
    "kubernetes.podspec-nodeselector": "enabled",
    "kubernetes.podspec-tolerations": "enabled",
    "kubernetes.podspec-securitycontext": "enabled",
    "kubernetes.containerspec-addcapabilities": "enabled",
    "kubernetes.podspec-persistent-volume-claim": "enabled",
    "kubernetes.podspec-persistent-volume-write": "enabled",
    "kubernetes.podspec-init-containers": "enabled",
    "kubernetes.podspec-volumes-emptydir": "enabled",
}
"""Knative ``config-features`` flags berth's Knative Services may need, all on: what a cluster
meant for berth should set. Knative's own defaults leave all but emptydir disabled."""


class _Part(BaseModel):
    # Agents newer than this contract may report more; it is kept, not refused.
    model_config = ConfigDict(frozen=True, extra="allow")


class KaiCapabilities(_Part):
    """The KAI scheduler."""

    version: str = Field(default="", description="KAI version, e.g. v0.17.0; empty if unknown.")
    shards: list[str] | None = Field(
        default=None,
        description=(
            "partitionLabelValue of each scheduling shard ('' is the default shard, which sees "
            "only nodes without the node-pool label); None when the scheduler is not sharded."
        ),
    )
    priorityClasses: list[str] = Field(
        default_factory=lambda: list(KAI_PRIORITY_CLASSES),
        description="PriorityClasses present in the cluster.",
    )
    gpuSharing: bool = Field(
        default=True, description="GPU sharing (gpu-fraction and gpu-memory pods) is enabled."
    )
    queuePerNodePool: bool = Field(
        default=False,
        description=(
            "Queues follow KAI's shard convention, one per project and node pool, named "
            "<project queue>-<pool>; a workload goes to the queue of its pool."
        ),
    )


class KnativeCapabilities(_Part):
    """Knative Serving."""

    version: str = Field(default="", description="Knative Serving version; empty if unknown.")
    features: dict[str, str] = Field(
        default_factory=dict,
        description="Flags of the config-features ConfigMap (Enabled, Allowed or Disabled).",
    )

    def allows(self, flag: str) -> bool:
        return self.features.get(flag, "").strip().lower() in ("enabled", "allowed")


class ClusterCapabilities(_Part):
    """What the cluster offers that decides what berth renders and what it refuses."""

    kai: KaiCapabilities = Field(default_factory=KaiCapabilities, description="The scheduler.")
    workloadApis: dict[str, str] = Field(
        default_factory=lambda: {**TRAINING_OPERATOR_APIS, **MPI_OPERATOR_APIS},
        description=(
            "Kubeflow kinds the cluster serves, by kind, at the API version berth renders "
            "(e.g. MPIJob: kubeflow.org/v2beta1 from the mpi-operator). A kind served only at "
            "another version (training-operator 1.x serves MPIJob at kubeflow.org/v1) is absent."
        ),
    )
    trainingOperator: str = Field(
        default="", description="Version of the Kubeflow training-operator; empty if unknown."
    )
    knative: KnativeCapabilities | None = Field(
        default=None, description="Knative Serving, when installed."
    )
    migStrategy: Literal["none", "single", "mixed"] = Field(
        default="mixed",
        description="NVIDIA device plugin MIG strategy; only mixed exposes a resource per profile.",
    )
