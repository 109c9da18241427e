"""The workload's container: image, command, environment, ports, probe, security."""

from __future__ import annotations

import re
import shlex
from typing import Any

from berth.contracts.catalog import credential_secret_name
from berth.contracts.workload import (
    BaseSpec,
    CommonSpec,
    EnvironmentVariable,
    Port,
    Probe,
    Security,
)
from berth.scheduler_adapter.rendering.resources import resources, shared_memory

# Kubernetes port names are IANA service names; a free-form Run:ai port name may not be one.
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def split_words(text: str | None) -> list[str] | None:
    if text is None or not text.strip():
        return None
    try:
        return shlex.split(text)
    except ValueError:
        # An unbalanced quote was accepted upstream; running the workload with whitespace
        # splitting beats refusing it at the last step.
        return text.split()


def env_var(item: EnvironmentVariable) -> dict[str, Any]:
    if item.credential is not None:
        ref = {"name": credential_secret_name(item.credential.name), "key": item.credential.key}
        return {"name": item.name, "valueFrom": {"secretKeyRef": ref}}
    return {"name": item.name, "value": item.value or ""}


def container_port(port: int, name: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"containerPort": port, "protocol": "TCP"}
    if name and len(name) <= 15 and _PORT_NAME.match(name):
        result["name"] = name
    return result


def ports(spec: BaseSpec, extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    result = list(extra or ())
    taken = {port["containerPort"] for port in result}
    for port in spec.ports or ():
        if port.container not in taken:
            taken.add(port.container)
            result.append(container_port(port.container, _port_name(port)))
    return result


def _port_name(port: Port) -> str | None:
    return port.name or port.toolType


def readiness_probe(probe: Probe | None, default_port: int | None) -> dict[str, Any] | None:
    http = probe.handler.httpGet if probe and probe.handler else None
    port = (http.port if http else None) or default_port
    if probe is None or http is None or port is None:
        return None  # a probe without an action is not a valid Kubernetes probe
    action: dict[str, Any] = {"port": port, "path": http.path or "/"}
    if http.host:
        action["host"] = http.host
    if http.scheme:
        action["scheme"] = http.scheme
    result: dict[str, Any] = {"httpGet": action}
    for field in (
        "initialDelaySeconds",
        "periodSeconds",
        "timeoutSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        value = getattr(probe, field)
        if value is not None:
            result[field] = value
    return result


def container_security(spec: BaseSpec) -> dict[str, Any]:
    security = spec.security
    if security is None:
        return {}
    result: dict[str, Any] = {}
    if security.capabilities:
        result["capabilities"] = {"add": list(security.capabilities)}
    if security.readOnlyRootFilesystem is not None:
        result["readOnlyRootFilesystem"] = security.readOnlyRootFilesystem
    if isinstance(security, Security) and security.allowPrivilegeEscalation is not None:
        result["allowPrivilegeEscalation"] = security.allowPrivilegeEscalation
    return result


def container(
    spec: BaseSpec,
    name: str,
    extra_ports: list[dict[str, Any]] | None = None,
    *,
    spec_ports: bool = True,
) -> dict[str, Any]:
    """The main container; ``spec_ports`` False exposes only ``extra_ports`` (Knative admits
    a single container port)."""
    result: dict[str, Any] = {"name": name}
    if spec.image:
        result["image"] = spec.image
    if spec.imagePullPolicy:
        result["imagePullPolicy"] = spec.imagePullPolicy
    command = split_words(spec.command)
    if command:
        result["command"] = command
    args = split_words(spec.args)
    if args:
        result["args"] = args
    if spec.workingDir:
        result["workingDir"] = spec.workingDir
    env = [env_var(item) for item in spec.environmentVariables or () if not item.exclude]
    if env:
        result["env"] = env
    exposed = ports(spec, extra_ports) if spec_ports else list(extra_ports or ())
    if exposed:
        result["ports"] = exposed
    probe = readiness_probe(
        spec.probes.readiness if spec.probes else None,
        exposed[0]["containerPort"] if exposed else None,
    )
    if probe:
        result["readinessProbe"] = probe
    if isinstance(spec, CommonSpec):
        if spec.tty is not None:
            result["tty"] = spec.tty
        if spec.stdin is not None:
            result["stdin"] = spec.stdin
    security = container_security(spec)
    if security:
        result["securityContext"] = security
    result["resources"] = resources(spec.compute)
    shm = shared_memory(spec.compute)
    if shm:
        result["volumeMounts"] = [shm[1]]
    return result
