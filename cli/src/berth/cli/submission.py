"""Building the submission a UI would send, from command-line flags.

The CLI does not validate: intake does, and names every bad field in its rejection, so the CLI
and every UI get the same answers."""

from __future__ import annotations

from typing import Any


def key_values(items: list[str] | None, flag: str) -> list[dict[str, str]]:
    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} takes KEY=VALUE, got {item!r}")
        out.append({"name": key, "value": value})
    return out


def build(
    *,
    kind: str,
    project: str,
    name: str,
    name_prefix: bool,
    image: str | None,
    gpu: int | None,
    gpu_portion: float | None,
    cpu: float | None,
    memory: str | None,
    command: str | None,
    args: str | None,
    env: list[str] | None,
    labels: list[str] | None,
    annotations: list[str] | None,
    node_pools: str | None,
    backoff_limit: int | None,
    auto_delete_seconds: int | None,
    allow_over_quota: bool | None,
    workers: int | None = None,
    framework: str | None = None,
    no_master: bool = False,
    assets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if image is not None:
        spec["image"] = image
    if command is not None:
        spec["command"] = command
    if args is not None:
        spec["args"] = args
    compute: dict[str, Any] = {}
    if gpu is not None:
        compute["gpuDevicesRequest"] = gpu
    if gpu_portion is not None:
        compute.setdefault("gpuDevicesRequest", 1)
        compute["gpuRequestType"] = "portion"
        compute["gpuPortionRequest"] = gpu_portion
    if cpu is not None:
        compute["cpuCoreRequest"] = cpu
    if memory is not None:
        compute["cpuMemoryRequest"] = memory
    if compute:
        spec["compute"] = compute
    for field, values, flag in (
        ("environmentVariables", env, "--env"),
        ("labels", labels, "--label"),
        ("annotations", annotations, "--annotation"),
    ):
        if values:
            spec[field] = key_values(values, flag)
    if node_pools:
        spec["nodePools"] = [p.strip() for p in node_pools.split(",") if p.strip()]
    if backoff_limit is not None:
        spec["backoffLimit"] = backoff_limit
    if auto_delete_seconds is not None:
        spec["autoDeletionTimeAfterCompletionSeconds"] = auto_delete_seconds
    if allow_over_quota is not None:
        spec["allowOverQuota"] = allow_over_quota
    submission: dict[str, Any] = {
        "kind": kind,
        "name": name,
        "useGivenNameAsPrefix": name_prefix,
        "projectId": project,
        "spec": spec,
    }
    # Asset names (template, environment, compute, dataSources): intake resolves them.
    submission.update({k: v for k, v in (assets or {}).items() if v})
    if kind == "training" and (workers is not None or framework is not None):
        submission["kind"] = "distributed"
        spec["distributedFramework"] = _framework(framework or "pytorch")
        spec["numWorkers"] = workers if workers is not None else 1
        if no_master:
            submission["noMaster"] = True
    return submission


_FRAMEWORKS = {
    "pytorch": "PyTorch",
    "tf": "TF",
    "tensorflow": "TF",
    "mpi": "MPI",
    "xgboost": "XGBoost",
}


def _framework(value: str) -> str:
    # Unknown names pass through unchanged so that intake's rejection names them.
    return _FRAMEWORKS.get(value.lower(), value)
