"""The pod template every kind shares: metadata, the container, placement, pod security."""

from __future__ import annotations

from typing import Any

from berth.contracts.events import WorkloadRef
from berth.contracts.workload import BaseSpec, Security
from berth.scheduler_adapter import labels
from berth.scheduler_adapter.rendering.container import container
from berth.scheduler_adapter.rendering.metadata import (
    selector,
    workload_annotations,
    workload_labels,
)
from berth.scheduler_adapter.rendering.placement import placement
from berth.scheduler_adapter.rendering.resources import gpu_sharing, shared_memory
from berth.scheduler_adapter.rendering.storage import RenderedStorage

HOME_VOLUME = "home"
HOME_DIR = "/home/berth"


def pod_security(spec: BaseSpec) -> dict[str, Any]:
    """Pod-level securityContext plus host namespaces."""
    security = spec.security
    if security is None:
        return {}
    context: dict[str, Any] = {}
    if security.runAsUid is not None:
        context["runAsUser"] = security.runAsUid
    if security.runAsGid is not None:
        context["runAsGroup"] = security.runAsGid
    if security.supplementalGroups:
        context["supplementalGroups"] = [int(g) for g in security.supplementalGroups.split(",")]
    if security.runAsNonRoot is not None:
        context["runAsNonRoot"] = security.runAsNonRoot
    # Localhost needs a profile path the spec cannot carry, so only the two others are rendered.
    if security.seccompProfileType in ("RuntimeDefault", "Unconfined"):
        context["seccompProfile"] = {"type": security.seccompProfileType}
    result: dict[str, Any] = {"securityContext": context} if context else {}
    if isinstance(security, Security):
        if security.hostIpc is not None:
            result["hostIPC"] = security.hostIpc
        if security.hostNetwork is not None:
            result["hostNetwork"] = security.hostNetwork
    return result


def pod_template(
    workload: WorkloadRef,
    spec: BaseSpec,
    *,
    trace_id: str | None,
    restart_policy: str,
    container_name: str,
    ports: list[dict[str, Any]] | None = None,
    extra_annotations: dict[str, str] | None = None,
    storage: RenderedStorage | None = None,
    extra_env: list[dict[str, Any]] | None = None,
    spec_ports: bool = True,
) -> dict[str, Any]:
    annotations = workload_annotations(workload, spec, trace_id)
    annotations.update(gpu_sharing(spec.compute) or {})
    annotations.update(extra_annotations or {})
    main = container(spec, container_name, ports, spec_ports=spec_ports)
    if extra_env:
        main["env"] = [*main.get("env", ()), *extra_env]
    volumes: list[dict[str, Any]] = []
    shm = shared_memory(spec.compute)
    if shm:
        volumes.append(shm[0])
    if spec.createHomeDir:
        # A writable home for whatever user the container runs as (images rarely have one
        # for an arbitrary uid); it lives as long as the pod, like Run:ai's.
        volumes.append({"name": HOME_VOLUME, "emptyDir": {}})
        main["volumeMounts"] = [
            *main.get("volumeMounts", ()),
            {"name": HOME_VOLUME, "mountPath": HOME_DIR},
        ]
        if not any(item.get("name") == "HOME" for item in main.get("env", ())):
            main["env"] = [*main.get("env", ()), {"name": "HOME", "value": HOME_DIR}]
    if storage is not None and storage.volumes:
        volumes.extend(storage.volumes)
        main["volumeMounts"] = [*main.get("volumeMounts", ()), *storage.mounts]
    pod_spec: dict[str, Any] = {
        "schedulerName": labels.SCHEDULER_NAME,
        "restartPolicy": restart_policy,
    }
    if storage is not None and storage.init_containers:
        pod_spec["initContainers"] = storage.init_containers
    pod_spec["containers"] = [main]
    pod_spec.update(placement(spec, selector(workload)))
    pod_spec.update(pod_security(spec))
    if volumes:
        pod_spec["volumes"] = volumes
    return {
        "metadata": {"labels": workload_labels(workload, spec), "annotations": annotations},
        "spec": pod_spec,
    }
