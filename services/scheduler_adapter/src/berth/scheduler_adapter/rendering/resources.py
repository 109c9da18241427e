"""Compute → container resources and KAI's GPU-sharing pod annotations."""

from __future__ import annotations

import math
from typing import Any

from berth.contracts.quantity import quantity_to_bytes
from berth.contracts.workload import Compute
from berth.scheduler_adapter import labels

MIB = 2**20


def cpu_quantity(cores: float) -> str:
    if float(cores).is_integer():
        return str(int(cores))
    # Millicores are the cluster's own resolution, so this never rounds a request.
    return f"{round(cores * 1000)}m"


def resources(compute: Compute | None) -> dict[str, Any]:
    if compute is None:
        return {}
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if compute.cpuCoreRequest is not None:
        requests["cpu"] = cpu_quantity(compute.cpuCoreRequest)
    if compute.cpuMemoryRequest:
        requests["memory"] = compute.cpuMemoryRequest
    if compute.cpuCoreLimit is not None:
        limits["cpu"] = cpu_quantity(compute.cpuCoreLimit)
    if compute.cpuMemoryLimit:
        limits["memory"] = compute.cpuMemoryLimit
    if compute.migProfile:
        # The NVIDIA device plugin's mixed strategy: one resource per MIG profile.
        limits[f"{labels.MIG_RESOURCE_PREFIX}{compute.migProfile}"] = "1"
    elif gpu_sharing(compute) is None and compute.gpuDevicesRequest:
        limits[labels.GPU_RESOURCE] = str(compute.gpuDevicesRequest)
    elif gpu_sharing(compute) is None and compute.gpuPortionRequest:
        # A portion of 1 whose device count a policy did not fill in: one whole GPU.
        limits[labels.GPU_RESOURCE] = "1"
    for extended in compute.extendedResources or ():
        if not extended.exclude:
            limits[extended.resource] = extended.quantity or "1"
    result: dict[str, Any] = {}
    if requests:
        result["requests"] = requests
    if limits:
        result["limits"] = limits
    return result


def gpu_sharing(compute: Compute | None) -> dict[str, str] | None:
    """KAI's GPU-sharing pod annotations; None when the pod takes whole devices (or none)."""
    if compute is None or compute.gpuDevicesRequest == 0:
        return None
    if compute.gpuPortionRequest is not None:
        if compute.gpuPortionRequest >= 1:
            # KAI's gpu-request validator accepts a fraction only in (0, 1): all of a GPU is
            # a whole device.
            return None
        return {labels.GPU_FRACTION_ANNOTATION: f"{compute.gpuPortionRequest:g}"}
    if compute.gpuMemoryRequest:
        mebibytes = math.ceil(quantity_to_bytes(compute.gpuMemoryRequest) / MIB)
        return {labels.GPU_MEMORY_ANNOTATION: str(mebibytes)}
    return None


def shared_memory(compute: Compute | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(volume, mount) for a large /dev/shm; containers get a small one by default, too small
    for the data loaders of most training frameworks."""
    if compute is None or not compute.largeShmRequest:
        return None
    volume = {"name": "dshm", "emptyDir": {"medium": "Memory"}}
    return volume, {"name": "dshm", "mountPath": "/dev/shm"}
