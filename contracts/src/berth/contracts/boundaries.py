"""Limits at berth's edges: identifiers, sizes, numbers and Kubernetes names.

Everything a client sends passes these checks before it is stored or forwarded, so that one
message can never stop a service (a subject that is not a NATS token, a value PostgreSQL cannot
store, a size that stalls the cluster side). Every check returns named issues (field, value,
reason) or raises ``ValueError`` with the reason; none of them trusts ``re.match`` with ``$``
(which accepts a final newline): patterns are always applied with ``re.fullmatch``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from berth.contracts.events import Issue
from berth.contracts.quantity import quantity_to_bytes
from berth.contracts.subjects import SUBJECT_TOKEN, subject_token_problem

__all__ = ["SUBJECT_TOKEN", "subject_token_problem"]

# Workload ids chosen by clients.
WORKLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# A submission's encoded event may not be larger than this: far below the NATS maximum payload
# (1 MiB by default), and far above any real spec (a few KiB).
MAX_SUBMISSION_BYTES = 256 * 1024

# Per pod (per worker for distributed workloads); no node has more.
MAX_GPU_DEVICES = 64
MAX_CPU_CORES = 1024
MAX_MEMORY_BYTES = 64 * 1024**4  # 64 TiB
MAX_REPLICAS = 10_000
# JSON numbers beyond this lose precision in most clients and mean nothing here.
MAX_SAFE_INTEGER = 2**53 - 1

# Kubernetes rules (apimachinery validation).
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_ENV_VAR_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
MAX_ANNOTATIONS_BYTES = 256 * 1024


def workload_id_problem(value: str) -> str | None:
    if not WORKLOAD_ID.fullmatch(value):
        return f"workload id {value!r} must be 1-64 of A-Z a-z 0-9 _ -"
    return None


# --- raw JSON ---------------------------------------------------------------------------------


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield path + "." + str(key) if path else str(key), key
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}.{index}" if path else str(index))


def _all_storable(value: Any) -> bool:
    """Whether ``unstorable_values`` finds nothing in ``value`` (the same values and keys)."""
    kind = type(value)
    # What JSON decodes to, by exact type first: isinstance against Mapping is slow.
    if kind is str:
        return "\x00" not in value
    if kind is dict:
        return all(_all_storable(k) and _all_storable(v) for k, v in value.items())
    if kind is list:
        return all(_all_storable(v) for v in value)
    if kind is bool or value is None:
        return True
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is float:
        return math.isfinite(value)
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, bool):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int):
        return abs(value) <= MAX_SAFE_INTEGER
    if isinstance(value, Mapping):
        return all(_all_storable(k) and _all_storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_all_storable(v) for v in value)
    return True


def unstorable_values(data: Any, root: str = "") -> list[Issue]:
    """NaN, infinities, NUL characters and integers no client can represent: JSON parsers let
    them through, but PostgreSQL, Kubernetes and the schedulers cannot take them."""
    if _all_storable(data):
        # The common case, decided without building the path of every value.
        return []
    issues: list[Issue] = []
    for path, value in _walk(data, root):
        field = path or "submission"
        if isinstance(value, float) and not math.isfinite(value):
            issues.append(Issue(field=field, details=f"{value} is not a finite number"))
        elif isinstance(value, str) and "\x00" in value:
            issues.append(Issue(field=field, details="contains a NUL character"))
        elif (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER
        ):
            issues.append(Issue(field=field, details=f"{value} is too large a number"))
    return issues


def _too_large(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER


def storable(data: Any) -> Any:
    """``data`` with what ``unstorable_values`` names replaced by a readable stand-in, so that a
    rejected submission can still be recorded as it came."""
    if isinstance(data, Mapping):
        return {str(storable(k)): storable(v) for k, v in data.items()}
    if isinstance(data, list):
        return [storable(v) for v in data]
    if isinstance(data, float) and not math.isfinite(data):
        return str(data)
    if isinstance(data, str):
        return data.replace("\x00", "\\u0000")
    if _too_large(data):
        return str(data)
    return data


# --- quantities -------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _bytes(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            return float(quantity_to_bytes(value))
        except (ValueError, ArithmeticError):
            return None
    return _number(value)


_BOUNDS: tuple[tuple[str, str, float, str], ...] = (
    # (key in the spec, how to read it, upper bound, unit)
    ("compute.gpuDevicesRequest", "number", MAX_GPU_DEVICES, "GPUs per pod"),
    ("compute.cpuCoreRequest", "number", MAX_CPU_CORES, "CPU cores per pod"),
    ("compute.cpuCoreLimit", "number", MAX_CPU_CORES, "CPU cores per pod"),
    ("compute.cpuMemoryRequest", "bytes", MAX_MEMORY_BYTES, "bytes per pod"),
    ("compute.cpuMemoryLimit", "bytes", MAX_MEMORY_BYTES, "bytes per pod"),
    ("compute.gpuMemoryRequest", "bytes", MAX_MEMORY_BYTES, "bytes per GPU"),
    ("compute.gpuMemoryLimit", "bytes", MAX_MEMORY_BYTES, "bytes per GPU"),
    ("numWorkers", "number", MAX_REPLICAS, "workers"),
    ("minReplicas", "number", MAX_REPLICAS, "replicas"),
    ("autoscaling.minReplicas", "number", MAX_REPLICAS, "replicas"),
    ("autoscaling.maxReplicas", "number", MAX_REPLICAS, "replicas"),
    ("slotsPerWorker", "number", MAX_GPU_DEVICES * 4, "slots per worker"),
)


_BOUND_PATHS: tuple[tuple[str, ...], ...] = tuple(tuple(key.split(".")) for key, *_ in _BOUNDS)


def _is_mapping(value: Any) -> bool:
    # What JSON decodes to first: isinstance against the Mapping ABC is several times slower.
    return type(value) is dict or isinstance(value, Mapping)


def _get(spec: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = spec
    for part in path:
        if not _is_mapping(value):
            return None
        value = value.get(part)
    return value


def _specs(submission: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for key in ("spec", "masterSpec"):
        spec = submission.get(key)
        if spec is not None and _is_mapping(spec):
            yield key, spec


def absurd_quantities(submission: Mapping[str, Any]) -> list[Issue]:
    """Requests no cluster could ever satisfy (10^40 GPUs), refused before anything plans
    with them."""
    issues: list[Issue] = []
    for root, spec in _specs(submission):
        for (key, kind, bound, unit), path in zip(_BOUNDS, _BOUND_PATHS, strict=True):
            raw = _get(spec, path)
            if raw is None:
                continue
            value = _number(raw) if kind == "number" else _bytes(raw)
            if value is not None and value > bound:
                issues.append(
                    Issue(
                        field=f"{root}.{key}",
                        details=f"{raw} is more than the limit of {bound:g} {unit}",
                    )
                )
    return issues


# Command lines are split into words (shlex) when rendered: linear, but slow in pure Python
# (about 5 s per MiB). No real command line comes near this.
MAX_COMMAND_BYTES = 64 * 1024


def long_command_lines(submission: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    for root, spec in _specs(submission):
        for key in ("command", "args"):
            value = spec.get(key)
            if isinstance(value, str) and len(value.encode()) > MAX_COMMAND_BYTES:
                issues.append(
                    Issue(
                        field=f"{root}.{key}",
                        details=f"{len(value.encode())} bytes; the limit is {MAX_COMMAND_BYTES}",
                    )
                )
    return issues


# --- Kubernetes names -------------------------------------------------------------------------


def qualified_name_problem(key: str) -> str | None:
    """Kubernetes' rule for label and annotation keys: ``[prefix/]name``."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "the prefix before / must not be empty"
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return f"prefix {prefix!r} must be a DNS subdomain (lower case, at most 253 characters)"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        return (
            f"name {name!r} must be 1-63 characters of A-Z a-z 0-9 - _ ., "
            "starting and ending with a letter or digit"
        )
    return None


def label_value_problem(value: str) -> str | None:
    if value and (len(value) > 63 or not _QUALIFIED_NAME.fullmatch(value)):
        return (
            f"value {value!r} must be at most 63 characters of A-Z a-z 0-9 - _ ., "
            "starting and ending with a letter or digit"
        )
    return None


def env_name_problem(name: str) -> str | None:
    if not _ENV_VAR_NAME.fullmatch(name):
        return f"{name!r} is not a valid environment variable name ([-._a-zA-Z][-._a-zA-Z0-9]*)"
    return None


def _items(spec: Mapping[str, Any], key: str) -> Sequence[Any]:
    value = spec.get(key)
    return value if isinstance(value, list) else []


def kubernetes_names(submission: Mapping[str, Any]) -> list[Issue]:
    """Labels, annotations and environment variable names the API server would refuse."""
    issues: list[Issue] = []
    for root, spec in _specs(submission):
        for index, item in enumerate(_items(spec, "labels")):
            if not _is_mapping(item) or not isinstance(item.get("name"), str):
                continue
            field = f"{root}.labels.{index}"
            if problem := qualified_name_problem(item["name"]):
                issues.append(Issue(field=f"{field}.name", details=f"label key: {problem}"))
            value = item.get("value")
            if isinstance(value, str) and (problem := label_value_problem(value)):
                issues.append(Issue(field=f"{field}.value", details=f"label {problem}"))
        total = 0
        for index, item in enumerate(_items(spec, "annotations")):
            if not _is_mapping(item) or not isinstance(item.get("name"), str):
                continue
            if problem := qualified_name_problem(item["name"]):
                issues.append(
                    Issue(
                        field=f"{root}.annotations.{index}.name",
                        details=f"annotation key: {problem}",
                    )
                )
            value = item.get("value")
            total += len(item["name"].encode()) + len(
                value.encode() if isinstance(value, str) else b""
            )
        if total > MAX_ANNOTATIONS_BYTES:
            issues.append(
                Issue(
                    field=f"{root}.annotations",
                    details=f"annotations take {total} bytes; the limit is {MAX_ANNOTATIONS_BYTES}",
                )
            )
        for index, item in enumerate(_items(spec, "environmentVariables")):
            name = item.get("name") if _is_mapping(item) else None
            if isinstance(name, str) and (problem := env_name_problem(name)):
                field = f"{root}.environmentVariables.{index}.name"
                issues.append(Issue(field=field, details=problem))
    return issues


# --- simulated cluster ------------------------------------------------------------------------

SIM_SECONDS_ANNOTATIONS = ("berth.dev/sim-runtime-seconds", "berth.dev/sim-startup-seconds")
SIM_FAIL_ANNOTATION = "berth.dev/sim-fail"
SIM_FAIL_MODES = ("crash", "image-pull")
MAX_SIMULATED_SECONDS = 365 * 24 * 3600


def simulation_annotations(submission: Mapping[str, Any]) -> list[Issue]:
    """The simulated cluster's knobs (README: runtime, start-up time, failure) must make sense:
    a NaN runtime never ends."""
    issues: list[Issue] = []
    for root, spec in _specs(submission):
        for index, item in enumerate(_items(spec, "annotations")):
            if not _is_mapping(item):
                continue
            name, value = item.get("name"), item.get("value")
            field = f"{root}.annotations.{index}.value"
            if name in SIM_SECONDS_ANNOTATIONS and isinstance(value, str):
                try:
                    seconds = float(value)
                except ValueError:
                    seconds = math.nan
                if not (math.isfinite(seconds) and 0 <= seconds <= MAX_SIMULATED_SECONDS):
                    issues.append(
                        Issue(
                            field=field,
                            details=f"{name} must be a number of seconds from 0 to "
                            f"{MAX_SIMULATED_SECONDS}, not {value!r}",
                        )
                    )
            elif name == SIM_FAIL_ANNOTATION and value and value not in SIM_FAIL_MODES:
                issues.append(
                    Issue(field=field, details=f"{name} must be one of {', '.join(SIM_FAIL_MODES)}")
                )
    return issues


def node_pools(submission: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, node pool) of every node pool a submission names."""
    out: list[tuple[str, str]] = []
    for root, spec in _specs(submission):
        for index, pool in enumerate(_items(spec, "nodePools")):
            if isinstance(pool, str):
                out.append((f"{root}.nodePools.{index}", pool))
    return out
