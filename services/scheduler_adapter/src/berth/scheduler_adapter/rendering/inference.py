"""Inference → ``apps/v1`` Deployment + ``v1`` Service in front of its serving port."""

from __future__ import annotations

from typing import Any

from berth.contracts.events import WorkloadRef
from berth.contracts.workload import (
    DEFAULT_MIN_REPLICAS,
    DEFAULT_SERVING_PROTOCOL,
    InferenceSubmission,
)
from berth.scheduler_adapter.rendering.container import container_port
from berth.scheduler_adapter.rendering.metadata import object_meta, selector
from berth.scheduler_adapter.rendering.pod import pod_template

DEFAULT_SERVING_PORT = 8000


def serving_port(submission: InferenceSubmission) -> tuple[int, str]:
    port = submission.spec.servingPort
    if port is None:
        return DEFAULT_SERVING_PORT, DEFAULT_SERVING_PROTOCOL
    return port.container, port.protocol or DEFAULT_SERVING_PROTOCOL


def replicas(submission: InferenceSubmission) -> int:
    autoscaling = submission.spec.autoscaling
    minimum = autoscaling.minReplicas if autoscaling else None
    # A plain Deployment has no activator to wake it from zero, so scale-to-zero runs one.
    return max(1, DEFAULT_MIN_REPLICAS if minimum is None else minimum)


def render_inference(
    workload: WorkloadRef, submission: InferenceSubmission, trace_id: str | None
) -> list[dict[str, Any]]:
    spec = submission.spec
    port, protocol = serving_port(submission)
    template = pod_template(
        workload,
        spec,
        trace_id=trace_id,
        restart_policy="Always",
        container_name=workload.name,
        ports=[container_port(port, protocol)],
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(workload, spec, trace_id),
        "spec": {
            "replicas": replicas(submission),
            "selector": selector(workload),
            "template": template,
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(workload, spec, trace_id),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(workload)["matchLabels"],
            "ports": [{"name": protocol, "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }
    return [deployment, service]
