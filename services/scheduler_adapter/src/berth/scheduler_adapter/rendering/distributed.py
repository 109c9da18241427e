"""Distributed → a Kubeflow job (PyTorchJob, TFJob, XGBoostJob or MPIJob).

Gang scheduling is KAI's: its podgrouper builds a PodGroup for every Kubeflow job
(``pg-<job>-<uid>``) and points each pod at it, with the gang size its framework plugin reads off
the job: every replica, or for elastic PyTorch ``elasticPolicy.minReplicas``. berth renders no
PodGroup of its own (the podgrouper would leave it empty, Pending forever).

Upstream rules the job follows: the training-operator refuses an XGBoostJob without a Master
(its webhook), and sets neither MASTER_ADDR/RANK nor the elastic variables for a PyTorchJob
with neither a Master nor an elasticPolicy, so a workers-only PyTorch job gets an elastic policy
of exactly its workers. The mpi-operator runs sshd in a worker only when the worker has no
command, and the launcher runs mpirun: the command goes to the launcher, which needs no GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from berth.contracts.events import WorkloadRef
from berth.contracts.workload import (
    DEFAULT_NUM_WORKERS,
    DEFAULT_SLOTS_PER_WORKER,
    CommonSpec,
    DistributedSpec,
    DistributedSubmission,
)
from berth.scheduler_adapter.rendering.capabilities import ClusterCapabilities
from berth.scheduler_adapter.rendering.metadata import object_meta
from berth.scheduler_adapter.rendering.pod import pod_template
from berth.scheduler_adapter.rendering.registry import render_kind
from berth.scheduler_adapter.rendering.storage import RenderedStorage, render_storage
from berth.scheduler_adapter.rendering.tools import connections, tool_ports, tool_services
from berth.scheduler_adapter.rendering.training import backoff_limit, claims, ttl_seconds


@dataclass(frozen=True)
class Framework:
    api_version: str
    kind: str
    replica_specs: str
    master_role: str
    container: str
    # MPI cannot start without its launcher, nor XGBoost without its master (the operator's
    # webhook refuses the job); "workers only" still gets one.
    master_required: bool = False


FRAMEWORKS: dict[str, Framework] = {
    "PyTorch": Framework(
        "kubeflow.org/v1", "PyTorchJob", "pytorchReplicaSpecs", "Master", "pytorch"
    ),
    "TF": Framework("kubeflow.org/v1", "TFJob", "tfReplicaSpecs", "Chief", "tensorflow"),
    "XGBoost": Framework(
        "kubeflow.org/v1", "XGBoostJob", "xgbReplicaSpecs", "Master", "xgboost", True
    ),
    "MPI": Framework("kubeflow.org/v2beta1", "MPIJob", "mpiReplicaSpecs", "Launcher", "mpi", True),
}

# The training operator restarts a failed replica in place and counts it against backoffLimit.
RESTART_POLICY = "OnFailure"


def master_spec(submission: DistributedSubmission, framework: Framework) -> CommonSpec | None:
    """The master's spec, or None for a workers-only job."""
    if submission.noMaster and not framework.master_required:
        return None
    if not submission.masterSpecSameAsWorker and submission.masterSpec is not None:
        return submission.masterSpec
    return submission.spec


def elastic_policy(spec: DistributedSpec, has_master: bool) -> dict[str, int] | None:
    policy = {
        name: value
        for name, value in (("minReplicas", spec.minReplicas), ("maxReplicas", spec.maxReplicas))
        if value is not None
    }
    if not policy and not has_master:
        # Without a master the operator tells the pods how to meet only through elastic
        # rendezvous (PET_* variables); a fixed-size one is the workers, all of them.
        workers = spec.numWorkers or DEFAULT_NUM_WORKERS
        policy = {"minReplicas": workers, "maxReplicas": workers}
    return policy or None


def without_gpus(spec: CommonSpec) -> CommonSpec:
    """``spec`` asking for no GPU (an MPI launcher only starts mpirun)."""
    compute = spec.compute
    if compute is None:
        return spec
    cpu_only = compute.model_copy(
        update=dict.fromkeys(
            (
                "gpuDevicesRequest",
                "gpuRequestType",
                "gpuPortionRequest",
                "gpuPortionLimit",
                "gpuMemoryRequest",
                "gpuMemoryLimit",
                "migProfile",
            )
        )
    )
    return spec.model_copy(update={"compute": cpu_only})


@render_kind.register
def render_distributed(
    submission: DistributedSubmission,
    workload: WorkloadRef,
    trace_id: str | None,
    capabilities: ClusterCapabilities,  # noqa: ARG001 (the same on every cluster)
) -> list[dict[str, Any]]:
    spec = submission.spec
    framework = FRAMEWORKS[spec.distributedFramework]
    mpi = framework.kind == "MPIJob"

    def replica(role_spec: CommonSpec, count: int, storage: RenderedStorage) -> dict[str, Any]:
        template = pod_template(
            workload,
            role_spec,
            trace_id=trace_id,
            restart_policy=RESTART_POLICY,
            container_name=framework.container,
            ports=tool_ports(connections(role_spec)),
            storage=storage,
        )
        return {"replicas": count, "restartPolicy": RESTART_POLICY, "template": template}

    replicas: dict[str, Any] = {}
    worker_storage = render_storage(workload, spec, trace_id)
    storages = [worker_storage]
    master = master_spec(submission, framework)
    if master is not None:
        # A master with its own spec gets its own claims; otherwise it shares the workers'.
        master_storage = worker_storage
        if master is not spec:
            master_storage = render_storage(workload, master, trace_id, role="master")
            storages.append(master_storage)
        replicas[framework.master_role] = replica(
            without_gpus(master) if mpi else master, 1, master_storage
        )
    workers = spec.numWorkers or DEFAULT_NUM_WORKERS
    # MPI workers keep the image's entry point: the operator starts sshd there for mpirun.
    worker = spec.model_copy(update={"command": None, "args": None}) if mpi else spec
    replicas["Worker"] = replica(worker, workers, worker_storage)

    job_spec: dict[str, Any] = {
        "runPolicy": {
            "backoffLimit": backoff_limit(spec),
            "ttlSecondsAfterFinished": ttl_seconds(spec),
        },
        framework.replica_specs: replicas,
    }
    if mpi:
        job_spec["slotsPerWorker"] = spec.slotsPerWorker or DEFAULT_SLOTS_PER_WORKER
    if framework.kind == "PyTorchJob":
        elastic = elastic_policy(spec, master is not None)
        if elastic:
            job_spec["elasticPolicy"] = elastic

    job = {
        "apiVersion": framework.api_version,
        "kind": framework.kind,
        "metadata": object_meta(workload, spec, trace_id),
        "spec": job_spec,
    }
    # The workers' tool connections, served by every pod that exposes the port.
    services = tool_services(workload, spec, trace_id, job, connections(spec))
    return [job, *services, *(c for storage in storages for c in claims(storage, job))]
