"""Training → ``batch/v1`` Job."""

from __future__ import annotations

from typing import Any

from berth.contracts.events import WorkloadRef
from berth.contracts.workload import (
    DEFAULT_AUTO_DELETION_SECONDS,
    DEFAULT_BACKOFF_LIMIT,
    BaseSpec,
    CommonSpec,
    TrainingSubmission,
)
from berth.scheduler_adapter.rendering.capabilities import ClusterCapabilities
from berth.scheduler_adapter.rendering.metadata import object_meta, owned
from berth.scheduler_adapter.rendering.pod import pod_template
from berth.scheduler_adapter.rendering.registry import render_kind
from berth.scheduler_adapter.rendering.storage import RenderedStorage, render_storage
from berth.scheduler_adapter.rendering.tools import connections, tool_ports, tool_services


def backoff_limit(spec: CommonSpec) -> int:
    return DEFAULT_BACKOFF_LIMIT if spec.backoffLimit is None else spec.backoffLimit


def ttl_seconds(spec: BaseSpec) -> int:
    seconds = spec.autoDeletionTimeAfterCompletionSeconds
    return DEFAULT_AUTO_DELETION_SECONDS if seconds is None else seconds


def preemption_policy(terminate: bool) -> dict[str, Any]:
    """What a preempted pod (condition DisruptionTarget) does to the Job: fail it, or be
    replaced without counting against backoffLimit, as a requeue."""
    return {
        "rules": [
            {
                "action": "FailJob" if terminate else "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            }
        ]
    }


@render_kind.register
def render_training(
    submission: TrainingSubmission,
    workload: WorkloadRef,
    trace_id: str | None,
    capabilities: ClusterCapabilities,  # noqa: ARG001 (the same on every cluster)
) -> list[dict[str, Any]]:
    spec = submission.spec
    job_spec: dict[str, Any] = {
        "backoffLimit": backoff_limit(spec),
        "ttlSecondsAfterFinished": ttl_seconds(spec),
    }
    # Hyper-parameter runs (completions/parallelism) map one to one onto the Job's own fields.
    if spec.completions is not None:
        job_spec["completions"] = spec.completions
    if spec.parallelism is not None:
        job_spec["parallelism"] = spec.parallelism
    if spec.terminateAfterPreemption is not None:
        job_spec["podFailurePolicy"] = preemption_policy(spec.terminateAfterPreemption)
    storage = render_storage(workload, spec, trace_id)
    tools = connections(spec)
    job_spec["template"] = pod_template(
        workload,
        spec,
        trace_id=trace_id,
        restart_policy="Never",
        container_name=workload.name,
        ports=tool_ports(tools),
        storage=storage,
    )
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": object_meta(workload, spec, trace_id),
        "spec": job_spec,
    }
    return [job, *tool_services(workload, spec, trace_id, job, tools), *claims(storage, job)]


def claims(storage: RenderedStorage, top: dict[str, Any]) -> list[dict[str, Any]]:
    """The claims to create; ephemeral ones are owned by ``top`` and go with it, the others
    outlive the workload."""
    ephemeral = [c for c in storage.objects if c["metadata"]["name"] in storage.ephemeral_claims]
    owned(ephemeral, top)
    return storage.objects
