"""Can a cluster run a submission as intended? A pure check, shared by intake and the adapter.

The contract models refuse what no cluster could run. This module refuses what the admission
webhooks and controllers of a real cluster would reject, or accept and then run wrongly, given
what the cluster reports (``ClusterCapabilities``): the Kubeflow operators it runs, KAI's shards
and priority classes, Knative and its feature flags. The rules were read in the upstream sources
named next to each one.
"""

from __future__ import annotations

from collections.abc import Iterator

from berth.contracts.capabilities import ClusterCapabilities
from berth.contracts.events import Issue
from berth.contracts.spec.base import DEFAULT_NUM_WORKERS, DEFAULT_WORKSPACE_PRIORITY_CLASS
from berth.contracts.spec.compute import Compute
from berth.contracts.spec.storage import Pvc
from berth.contracts.workload import (
    BaseSpec,
    CommonSpec,
    DistributedSubmission,
    InferenceSpec,
    InferenceSubmission,
    TrainingSpec,
    TrainingSubmission,
    WorkloadSubmission,
    WorkspaceSpec,
)

FRAMEWORK_APIS: dict[str, tuple[str, str]] = {
    "PyTorch": ("PyTorchJob", "kubeflow.org/v1"),
    "TF": ("TFJob", "kubeflow.org/v1"),
    "XGBoost": ("XGBoostJob", "kubeflow.org/v1"),
    "MPI": ("MPIJob", "kubeflow.org/v2beta1"),
}
"""The kind and API version berth renders for each distributed framework."""

PRIORITY_CLASS_NAMES: dict[str, str] = {"interactive-preemptible": "build-preemptible"}
"""Run:ai priority class names KAI ships under another name."""

# Knative Serving's reserved container ports (pkg/apis/serving/k8s_validation.go: the queue
# proxy's 8012/8013/8022, its metrics 9090/9091, the profiling port 8008).
KNATIVE_RESERVED_PORTS: frozenset[int] = frozenset({8012, 8013, 8022, 9090, 9091, 8008})
# Environment variables Knative sets itself and refuses in a container.
KNATIVE_RESERVED_ENV: frozenset[str] = frozenset(
    {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
)
DEFAULT_SERVING_PORT = 8000


def kai_priority_class(spec: BaseSpec) -> str | None:
    """The PriorityClass a spec's pods get on a KAI cluster (None: the kind's default)."""
    name: str | None = None
    if isinstance(spec, WorkspaceSpec):
        # Over-quota workspaces must be preemptible; in quota they default to "build".
        name = spec.priorityClass or (
            "interactive-preemptible" if spec.allowOverQuota else DEFAULT_WORKSPACE_PRIORITY_CLASS
        )
    elif isinstance(spec, TrainingSpec):
        name = spec.priorityClass
    return PRIORITY_CLASS_NAMES.get(name, name) if name else None


def pod_count(submission: WorkloadSubmission) -> int:
    """Most pods the workload may run at once (they may land on different nodes)."""
    if isinstance(submission, DistributedSubmission):
        workers = submission.spec.numWorkers or DEFAULT_NUM_WORKERS
        workers = max(workers, submission.spec.maxReplicas or 0)
        pytorch = submission.spec.distributedFramework == "PyTorch"
        return workers + (0 if submission.noMaster and pytorch else 1)
    if isinstance(submission, InferenceSubmission):
        scaling = submission.spec.autoscaling
        low = scaling.minReplicas if scaling and scaling.minReplicas is not None else 1
        high = scaling.maxReplicas if scaling and scaling.maxReplicas is not None else low
        return max(1, low, high)
    if isinstance(submission, TrainingSubmission):
        return submission.spec.parallelism or 1
    return 1


def knative_features(spec: InferenceSpec) -> dict[str, str]:
    """The config-features flags a Knative Service rendered from ``spec`` needs, each with the
    spec field that needs it."""
    needed = {"kubernetes.podspec-schedulername": "spec"}  # every pod goes to KAI
    if spec.nodePools or spec.podAffinity:
        needed["kubernetes.podspec-affinity"] = "spec.nodePools"
    if spec.nodeType:
        needed["kubernetes.podspec-nodeselector"] = "spec.nodeType"
    if spec.tolerations:
        needed["kubernetes.podspec-tolerations"] = "spec.tolerations"
    security = spec.security
    if security is not None:
        if any(
            value is not None
            for value in (security.runAsUid, security.runAsGid, security.supplementalGroups)
        ) or (security.runAsNonRoot is not None or security.seccompProfileType is not None):
            needed["kubernetes.podspec-securitycontext"] = "spec.security"
        if security.capabilities:
            needed["kubernetes.containerspec-addcapabilities"] = "spec.security.capabilities"
    storage = spec.storage
    if storage is not None:
        if storage.pvc or storage.dataVolume:
            needed["kubernetes.podspec-persistent-volume-claim"] = "spec.storage"
        if any(not pvc.readOnly for pvc in storage.pvc or ()) or storage.dataVolume:
            needed["kubernetes.podspec-persistent-volume-write"] = "spec.storage"
        if storage.git:
            needed["kubernetes.podspec-init-containers"] = "spec.storage.git"
            needed["kubernetes.podspec-volumes-emptydir"] = "spec.storage.git"
    if spec.compute is not None and spec.compute.largeShmRequest:
        needed["kubernetes.podspec-volumes-emptydir"] = "spec.compute.largeShmRequest"
    if spec.createHomeDir:
        needed["kubernetes.podspec-volumes-emptydir"] = "spec.createHomeDir"
    return needed


def check(
    submission: WorkloadSubmission, capabilities: ClusterCapabilities | None, cluster_id: str
) -> list[Issue]:
    """Why ``cluster_id`` cannot run ``submission`` as intended; empty when it can.

    ``capabilities`` None (an agent that reports none) checks only the rules that hold on every
    cluster."""
    issues = list(_everywhere(submission))
    if capabilities is not None:
        issues.extend(_on_cluster(submission, capabilities, cluster_id))
    return issues


def describe(issues: list[Issue]) -> str:
    """The issues as one line, for a phase message or an error."""
    return "; ".join(f"{issue.field}: {issue.details}" for issue in issues)


# --- rules of every cluster ----------------------------------------------------------------------


def _specs(submission: WorkloadSubmission) -> Iterator[tuple[str, BaseSpec]]:
    yield "spec", submission.spec
    if isinstance(submission, DistributedSubmission) and submission.masterSpec is not None:
        yield "masterSpec", submission.masterSpec


def _everywhere(submission: WorkloadSubmission) -> Iterator[Issue]:
    pods = pod_count(submission)
    if (
        isinstance(submission, DistributedSubmission)
        and submission.spec.distributedFramework == "MPI"
        and submission.masterSpec is not None
        and (submission.spec.command or submission.spec.args)
    ):
        # The mpi-operator starts sshd in a worker only when the worker has no command.
        yield Issue(
            field="spec.command",
            details="MPI workers run the mpi-operator's sshd; give the command to the "
            "launcher (masterSpec)",
        )
    for where, spec in _specs(submission):
        if not spec.image:
            # The API server (and the training-operator webhook) refuse a container without one.
            yield Issue(field=f"{where}.image", details="a container needs an image")
        yield from _compute(where, spec.compute)
        security = spec.security
        if security is not None and security.seccompProfileType == "Localhost":
            yield Issue(
                field=f"{where}.security.seccompProfileType",
                details="a Localhost profile needs a profile path on the node, which the spec "
                "cannot name; use RuntimeDefault or Unconfined",
            )
        if (
            security is not None
            and security.uidGidSource == "fromIdpToken"
            and security.runAsUid is None
        ):
            # The ids would come from the submitter's token, which never reaches berth.
            yield Issue(
                field=f"{where}.security.uidGidSource",
                details="berth does not read user and group ids from identity-provider tokens; "
                "set runAsUid and runAsGid",
            )
        if (
            isinstance(spec, WorkspaceSpec)
            and spec.autoDeletionTimeAfterCompletionSeconds is not None
        ):
            yield Issue(
                field=f"{where}.autoDeletionTimeAfterCompletionSeconds",
                details="a workspace runs until it is stopped (its StatefulSet restarts the "
                "container), so it never completes and cannot be deleted after completion",
            )
        if (
            isinstance(spec, CommonSpec)
            and spec.terminateAfterPreemption
            and not isinstance(spec, TrainingSpec)
        ):
            yield Issue(
                field=f"{where}.terminateAfterPreemption",
                details="only a training can be terminated after preemption (a Job's "
                "podFailurePolicy); the controllers of other kinds always recreate the pods",
            )
        for index, pvc in enumerate((spec.storage.pvc if spec.storage else None) or ()):
            if pods > 1 and _shared_single_node(pvc):
                yield Issue(
                    field=f"{where}.storage.pvc[{index}]",
                    details=f"a ReadWriteOnce claim mounted read-write by {pods} pods cannot be "
                    "attached on a second node; ask for readWriteMany or mount it read-only",
                )


def _shared_single_node(pvc: Pvc) -> bool:
    if pvc.existingPvc or pvc.readOnly:
        return False  # the access modes of an existing claim are not known here
    modes = pvc.claimInfo.accessModes if pvc.claimInfo else None
    if modes is None:
        return True  # berth's default mode is ReadWriteOnce
    return not modes.readWriteMany and not modes.readOnlyMany


def _compute(where: str, compute: Compute | None) -> Iterator[Issue]:
    if compute is None:
        return
    # KAI has no GPU limit beyond the share it allocates (gpu-fraction, gpu-memory).
    request, limit = compute.gpuPortionRequest, compute.gpuPortionLimit
    if limit is not None and (request is None or limit > request):
        yield Issue(
            field=f"{where}.compute.gpuPortionLimit",
            details="KAI cannot let a pod burst above its GPU portion; set gpuPortionLimit "
            "equal to gpuPortionRequest or leave it unset",
        )
    if compute.gpuMemoryLimit is not None and compute.gpuMemoryLimit != compute.gpuMemoryRequest:
        yield Issue(
            field=f"{where}.compute.gpuMemoryLimit",
            details="KAI cannot let a pod burst above its GPU memory; set gpuMemoryLimit "
            "equal to gpuMemoryRequest or leave it unset",
        )


# --- rules that depend on the cluster ------------------------------------------------------------


def _on_cluster(
    submission: WorkloadSubmission, capabilities: ClusterCapabilities, cluster_id: str
) -> Iterator[Issue]:
    if isinstance(submission, DistributedSubmission):
        kind, api = FRAMEWORK_APIS[submission.spec.distributedFramework]
        served = capabilities.workloadApis.get(kind)
        if served != api:
            operator = "mpi-operator" if kind == "MPIJob" else "Kubeflow training-operator"
            also = f" (it serves {kind} only at {served})" if served else ""
            yield Issue(
                field="spec.distributedFramework",
                details=f"{kind} needs the {operator} ({api}), which cluster {cluster_id} "
                f"does not run{also}",
            )
    kai = capabilities.kai
    for where, spec in _specs(submission):
        priority = kai_priority_class(spec)
        if priority is not None and priority not in kai.priorityClasses:
            yield Issue(
                field=f"{where}.priorityClass",
                details=f"PriorityClass {priority!r} does not exist on cluster {cluster_id}",
            )
        compute = spec.compute
        if compute is not None:
            shared = compute.gpuPortionRequest is not None or compute.gpuMemoryRequest is not None
            if shared and compute.gpuPortionRequest != 1 and not kai.gpuSharing:
                yield Issue(
                    field=f"{where}.compute",
                    details=f"cluster {cluster_id} does not enable KAI's GPU sharing",
                )
            if compute.migProfile and capabilities.migStrategy != "mixed":
                yield Issue(
                    field=f"{where}.compute.migProfile",
                    details=f"cluster {cluster_id} exposes no MIG profiles as resources "
                    f"(MIG strategy {capabilities.migStrategy}, not mixed)",
                )
        yield from _shards(where, spec, kai.shards, cluster_id)
    if isinstance(submission, InferenceSubmission) and capabilities.knative is not None:
        yield from _knative(submission.spec, capabilities, cluster_id)


def _shards(
    where: str, spec: BaseSpec, shards: list[str] | None, cluster_id: str
) -> Iterator[Issue]:
    """KAI's scheduling shards each see only the nodes, PodGroups and Queues labelled with
    their node pool (pkg/scheduler/conf/scheduler_conf.go), so a workload lives in one pool."""
    if shards is None or not spec.nodePools:
        return
    if len(spec.nodePools) > 1:
        yield Issue(
            field=f"{where}.nodePools",
            details=f"cluster {cluster_id} runs a KAI scheduling shard per node pool and a "
            "workload is scheduled by one shard: name one node pool",
        )
    for pool in spec.nodePools:
        if pool not in shards:
            yield Issue(
                field=f"{where}.nodePools",
                details=f"node pool {pool!r} has no KAI scheduling shard on cluster {cluster_id}",
            )


def _knative(
    spec: InferenceSpec, capabilities: ClusterCapabilities, cluster_id: str
) -> Iterator[Issue]:
    """Knative Serving's admission rules (pkg/apis/serving/k8s_validation.go, config-features)."""
    serving = spec.servingPort.container if spec.servingPort else DEFAULT_SERVING_PORT
    if serving in KNATIVE_RESERVED_PORTS:
        yield Issue(
            field="spec.servingPort.container",
            details=f"port {serving} is reserved by Knative",
        )
    for index, port in enumerate(spec.ports or ()):
        if port.container != serving:
            yield Issue(
                field=f"spec.ports[{index}]",
                details=f"Knative serves one container port ({serving}); port "
                f"{port.container} cannot be exposed on cluster {cluster_id}",
            )
    for index, url in enumerate(spec.exposedUrls or ()):
        if url.container != serving:
            yield Issue(
                field=f"spec.exposedUrls[{index}]",
                details=f"Knative serves one container port ({serving}); port "
                f"{url.container} cannot be exposed on cluster {cluster_id}",
            )
    for index, variable in enumerate(spec.environmentVariables or ()):
        if variable.name in KNATIVE_RESERVED_ENV and not variable.exclude:
            yield Issue(
                field=f"spec.environmentVariables[{index}]",
                details=f"{variable.name} is set by Knative itself",
            )
    knative = capabilities.knative
    assert knative is not None
    for flag, field in knative_features(spec).items():
        if not knative.allows(flag):
            yield Issue(
                field=field,
                details=f"Knative feature {flag} is not enabled on cluster {cluster_id}",
            )
