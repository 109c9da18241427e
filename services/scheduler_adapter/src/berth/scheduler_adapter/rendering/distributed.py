"""Distributed → a Kubeflow job (PyTorchJob, TFJob, XGBoostJob or MPIJob) plus its gang PodGroup.

Gang scheduling: we render the KAI PodGroup ourselves (minMember = every replica) and point each
pod at it with the ``pod-group-name`` annotation, rather than leaving it to KAI's pod-grouper
heuristics per framework. The gang size is then part of the desired state we apply, visible to
any backend (the simulated cluster reads it from the same manifests), and identical whichever
framework runs the job.
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
from berth.scheduler_adapter import labels as L
from berth.scheduler_adapter.rendering.metadata import object_meta, owned
from berth.scheduler_adapter.rendering.pod import pod_template
from berth.scheduler_adapter.rendering.storage import RenderedStorage, render_storage
from berth.scheduler_adapter.rendering.training import backoff_limit, claims, ttl_seconds


@dataclass(frozen=True)
class Framework:
    api_version: str
    kind: str
    replica_specs: str
    master_role: str
    container: str
    # MPI cannot start without its launcher, so "workers only" still gets one.
    master_required: bool = False


FRAMEWORKS: dict[str, Framework] = {
    "PyTorch": Framework(
        "kubeflow.org/v1", "PyTorchJob", "pytorchReplicaSpecs", "Master", "pytorch"
    ),
    "TF": Framework("kubeflow.org/v1", "TFJob", "tfReplicaSpecs", "Chief", "tensorflow"),
    "XGBoost": Framework("kubeflow.org/v1", "XGBoostJob", "xgbReplicaSpecs", "Master", "xgboost"),
    "MPI": Framework("kubeflow.org/v2beta1", "MPIJob", "mpiReplicaSpecs", "Launcher", "mpi", True),
}

# The training operator restarts a failed replica in place and counts it against backoffLimit.
RESTART_POLICY = "OnFailure"


def pod_group_name(workload: WorkloadRef) -> str:
    return f"pg-{workload.name}"


def master_spec(submission: DistributedSubmission, framework: Framework) -> CommonSpec | None:
    """The master's spec, or None for a workers-only job."""
    if submission.noMaster and not framework.master_required:
        return None
    if not submission.masterSpecSameAsWorker and submission.masterSpec is not None:
        return submission.masterSpec
    return submission.spec


def elastic_policy(spec: DistributedSpec) -> dict[str, int] | None:
    policy = {
        name: value
        for name, value in (("minReplicas", spec.minReplicas), ("maxReplicas", spec.maxReplicas))
        if value is not None
    }
    return policy or None


def render_distributed(
    workload: WorkloadRef, submission: DistributedSubmission, trace_id: str | None
) -> list[dict[str, Any]]:
    spec = submission.spec
    framework = FRAMEWORKS[spec.distributedFramework]
    group = pod_group_name(workload)

    def replica(role_spec: CommonSpec, count: int, storage: RenderedStorage) -> dict[str, Any]:
        template = pod_template(
            workload,
            role_spec,
            trace_id=trace_id,
            restart_policy=RESTART_POLICY,
            container_name=framework.container,
            extra_annotations={L.POD_GROUP_ANNOTATION: group},
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
        replicas[framework.master_role] = replica(master, 1, master_storage)
    workers = spec.numWorkers or DEFAULT_NUM_WORKERS
    replicas["Worker"] = replica(spec, workers, worker_storage)
    members = workers + (1 if master is not None else 0)

    job_spec: dict[str, Any] = {
        "runPolicy": {
            "backoffLimit": backoff_limit(spec),
            "ttlSecondsAfterFinished": ttl_seconds(spec),
        },
        framework.replica_specs: replicas,
    }
    if framework.kind == "MPIJob":
        job_spec["slotsPerWorker"] = spec.slotsPerWorker or DEFAULT_SLOTS_PER_WORKER
    elastic = elastic_policy(spec)
    if elastic and framework.kind == "PyTorchJob":
        job_spec["elasticPolicy"] = elastic

    pod_group = {
        "apiVersion": L.POD_GROUP_API_VERSION,
        "kind": "PodGroup",
        "metadata": object_meta(workload, spec, trace_id, name=group),
        "spec": {"minMember": members, "queue": workload.queue},
    }
    job = {
        "apiVersion": framework.api_version,
        "kind": framework.kind,
        "metadata": object_meta(workload, spec, trace_id),
        "spec": job_spec,
    }
    owned([pod_group], job)
    return [pod_group, job, *(c for storage in storages for c in claims(storage, job))]
