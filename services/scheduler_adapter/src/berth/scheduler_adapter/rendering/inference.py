"""Inference → a Knative Service when the cluster has Knative, otherwise Deployment + Service
(+ HorizontalPodAutoscaler when it may scale).

Knative: the KPA autoscaler scales on requests per second or concurrency and can scale to zero;
latency is not a KPA metric, so it goes to the HPA class with a custom ``latency`` metric. The
container exposes the serving port only: Knative admits one port, and refuses its reserved ones.
The pod template uses fields Knative accepts only with ``config-features`` flags on (the
scheduler name always); ``berth.contracts.runnable.knative_features`` lists the flags a spec
needs and ``check`` refuses a spec whose flags the cluster does not enable.

Without Knative nothing can wake a service from zero replicas, so at least one runs and the top
object says so in ``berth.dev/phase-note``, which becomes the workload's phase message.
"""

from __future__ import annotations

from typing import Any

from berth.contracts.catalog import credential_secret_name
from berth.contracts.events import WorkloadRef
from berth.contracts.workload import (
    DEFAULT_METRIC_THRESHOLD,
    DEFAULT_MIN_REPLICAS,
    DEFAULT_SERVING_PROTOCOL,
    InferenceSpec,
    InferenceSubmission,
)
from berth.scheduler_adapter import labels
from berth.scheduler_adapter.rendering.capabilities import ClusterCapabilities
from berth.scheduler_adapter.rendering.container import container_port
from berth.scheduler_adapter.rendering.metadata import object_meta, owned, selector
from berth.scheduler_adapter.rendering.pod import pod_template
from berth.scheduler_adapter.rendering.registry import render_kind
from berth.scheduler_adapter.rendering.storage import render_storage
from berth.scheduler_adapter.rendering.tools import connections, tool_ports, tool_services
from berth.scheduler_adapter.rendering.training import claims

DEFAULT_SERVING_PORT = 8000
# Environment the serving image reads the model from; the token only ever as a Secret reference.
MODEL_ENV = "MODEL_NAME"
HF_TOKEN_ENV = "HF_TOKEN"
# Key of the access token in a Hugging Face credential's Secret.
HF_TOKEN_KEY = "token"

# Knative's KPA metric names for the spec's metrics (latency is not one: see the module doc).
KPA_METRICS = {"throughput": "rps", "concurrency": "concurrency"}
# Per-pod custom metrics an HPA reads through a metrics adapter (e.g. prometheus-adapter).
HPA_METRICS = {
    "throughput": "requests_per_second",
    "concurrency": "concurrent_requests",
    "latency": "latency",
}
NO_SCALE_TO_ZERO = (
    "scale-to-zero needs Knative, which this cluster does not report; 1 replica kept running"
)


def serving_port(submission: InferenceSubmission) -> tuple[int, str]:
    port = submission.spec.servingPort
    if port is None:
        return DEFAULT_SERVING_PORT, DEFAULT_SERVING_PROTOCOL
    return port.container, port.protocol or DEFAULT_SERVING_PROTOCOL


def min_replicas(spec: InferenceSpec) -> int:
    minimum = spec.autoscaling.minReplicas if spec.autoscaling else None
    return DEFAULT_MIN_REPLICAS if minimum is None else minimum


def max_replicas(spec: InferenceSpec) -> int:
    maximum = spec.autoscaling.maxReplicas if spec.autoscaling else None
    return maximum if maximum is not None else max(1, min_replicas(spec))


def replicas(submission: InferenceSubmission) -> int:
    # A plain Deployment has no activator to wake it from zero, so scale-to-zero runs one.
    return max(1, min_replicas(submission.spec))


def model_env(spec: InferenceSpec) -> list[dict[str, Any]]:
    model = spec.model
    if model is None:
        return []
    env: list[dict[str, Any]] = [{"name": MODEL_ENV, "value": model.modelName}]
    if model.catalog == "huggingface" and model.credential is not None:
        ref = {"name": credential_secret_name(model.credential.name), "key": HF_TOKEN_KEY}
        env.append({"name": HF_TOKEN_ENV, "valueFrom": {"secretKeyRef": ref}})
    return env


def retention(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds and seconds % 60 == 0 else f"{seconds}s"


def knative_annotations(spec: InferenceSpec) -> dict[str, str]:
    autoscaling = spec.autoscaling
    metric = autoscaling.metric if autoscaling else None
    result = {
        labels.KNATIVE_CLASS: labels.KNATIVE_HPA if metric == "latency" else labels.KNATIVE_KPA,
        labels.KNATIVE_MIN_SCALE: str(min_replicas(spec)),
        labels.KNATIVE_MAX_SCALE: str(max_replicas(spec)),
    }
    if metric is not None:
        result[labels.KNATIVE_METRIC] = KPA_METRICS.get(metric, metric)
        threshold = autoscaling.metricThreshold if autoscaling else None
        result[labels.KNATIVE_TARGET] = str(threshold or DEFAULT_METRIC_THRESHOLD)
    seconds = autoscaling.scaleToZeroRetentionSeconds if autoscaling else None
    if seconds is not None:
        result[labels.KNATIVE_RETENTION] = retention(seconds)
    return result


def _knative(
    workload: WorkloadRef, submission: InferenceSubmission, trace_id: str | None
) -> list[dict[str, Any]]:
    spec = submission.spec
    port, protocol = serving_port(submission)
    storage = render_storage(workload, spec, trace_id)
    template = pod_template(
        workload,
        spec,
        trace_id=trace_id,
        restart_policy="Always",
        container_name=workload.name,
        # Knative routes to one port and tells HTTP/1 from HTTP/2 (gRPC) by its name.
        ports=[{"containerPort": port, "name": "h2c" if protocol == "grpc" else "http1"}],
        spec_ports=False,
        extra_annotations=knative_annotations(spec),
        storage=storage,
        extra_env=model_env(spec),
    )
    # Knative owns the restart policy of its revisions and refuses one in the template.
    template["spec"].pop("restartPolicy", None)
    service = {
        "apiVersion": labels.KNATIVE_API_VERSION,
        "kind": "Service",
        "metadata": object_meta(workload, spec, trace_id),
        "spec": {"template": template},
    }
    return [service, *claims(storage, service)]


def _autoscaler(
    workload: WorkloadRef, spec: InferenceSpec, trace_id: str | None, deployment: dict[str, Any]
) -> dict[str, Any] | None:
    autoscaling = spec.autoscaling
    low = max(1, min_replicas(spec))
    high = max(low, max_replicas(spec))
    if autoscaling is None or (high == low and autoscaling.metric is None):
        return None
    hpa_spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload.name},
        "minReplicas": low,
        "maxReplicas": high,
    }
    if autoscaling.metric is not None:
        target = str(autoscaling.metricThreshold or DEFAULT_METRIC_THRESHOLD)
        hpa_spec["metrics"] = [
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": HPA_METRICS[autoscaling.metric]},
                    "target": {"type": "AverageValue", "averageValue": target},
                },
            }
        ]
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_meta(workload, spec, trace_id),
        "spec": hpa_spec,
    }
    return owned([hpa], deployment)[0]


def _deployment(
    workload: WorkloadRef, submission: InferenceSubmission, trace_id: str | None
) -> list[dict[str, Any]]:
    spec = submission.spec
    port, protocol = serving_port(submission)
    storage = render_storage(workload, spec, trace_id)
    # The serving port has its Service below; other tool connections get their own.
    tools = [item for item in connections(spec) if item.port != port]
    template = pod_template(
        workload,
        spec,
        trace_id=trace_id,
        restart_policy="Always",
        container_name=workload.name,
        ports=[container_port(port, protocol), *tool_ports(tools)],
        storage=storage,
        extra_env=model_env(spec),
    )
    meta = object_meta(workload, spec, trace_id)
    if min_replicas(spec) == 0:
        meta["annotations"][labels.PHASE_NOTE_ANNOTATION] = NO_SCALE_TO_ZERO
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
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
    owned([service], deployment)
    hpa = _autoscaler(workload, spec, trace_id, deployment)
    return [
        deployment,
        service,
        *([hpa] if hpa else []),
        *tool_services(workload, spec, trace_id, deployment, tools),
        *claims(storage, deployment),
    ]


@render_kind.register
def render_inference(
    submission: InferenceSubmission,
    workload: WorkloadRef,
    trace_id: str | None,
    capabilities: ClusterCapabilities,
) -> list[dict[str, Any]]:
    if capabilities.knative:
        return _knative(workload, submission, trace_id)
    return _deployment(workload, submission, trace_id)
