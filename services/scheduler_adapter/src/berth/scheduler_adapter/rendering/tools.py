"""Tool connections: a Service per exposed container port, with who may reach it.

Each tool connection (Jupyter, VS Code, a custom port; Run:ai's ``ports`` and ``exposedUrls``)
gets its own Service, so the ingress or access proxy in front of it can apply that tool's access
list, recorded on the Service as annotations: everyone, some identity-provider groups, or some
users. Every kind renders them; the Service selects all the workload's pods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from berth.contracts.events import WorkloadRef
from berth.contracts.workload import BaseSpec
from berth.scheduler_adapter import labels
from berth.scheduler_adapter.rendering.container import container_port
from berth.scheduler_adapter.rendering.metadata import object_meta, owned, selector
from berth.scheduler_adapter.rendering.storage import dns_label


@dataclass
class Connection:
    port: int
    tool_type: str | None = None
    tool_name: str | None = None
    name: str | None = None
    service_type: str = "ClusterIP"
    external: int | None = None
    url: str | None = None
    users: list[str] | None = None
    groups: list[str] | None = None


def connections(spec: BaseSpec) -> list[Connection]:
    """One connection per container port, merging a port and the URL exposing it."""
    found: dict[int, Connection] = {}
    for port in spec.ports or ():
        found[port.container] = Connection(
            port=port.container,
            tool_type=port.toolType,
            tool_name=port.toolName,
            name=port.name,
            service_type=port.serviceType or "ClusterIP",
            external=port.external,
        )
    for url in spec.exposedUrls or ():
        item = found.setdefault(url.container, Connection(port=url.container))
        item.tool_type = item.tool_type or url.toolType
        item.tool_name = item.tool_name or url.toolName
        item.name = item.name or url.name
        item.url = url.url
        item.users = url.authorizedUsers
        item.groups = url.authorizedGroups
    return [found[port] for port in sorted(found)]


def access_annotations(item: Connection) -> dict[str, str]:
    result: dict[str, str] = {}
    if item.users is not None:
        result[labels.ACCESS_ANNOTATION] = "users"
        result[labels.AUTHORIZED_USERS_ANNOTATION] = ",".join(item.users)
    elif item.groups is not None:
        result[labels.ACCESS_ANNOTATION] = "groups"
        result[labels.AUTHORIZED_GROUPS_ANNOTATION] = ",".join(item.groups)
    else:
        result[labels.ACCESS_ANNOTATION] = "everyone"
    for key, value in (
        (labels.TOOL_TYPE_ANNOTATION, item.tool_type),
        (labels.TOOL_NAME_ANNOTATION, item.tool_name),
        (labels.TOOL_URL_ANNOTATION, item.url),
    ):
        if value:
            result[key] = value
    return result


def service_name(workload: WorkloadRef, item: Connection) -> str:
    # Service names are DNS-1035 labels; the port keeps two connections of one tool apart.
    label = dns_label(item.name or item.tool_type or "port", 20)
    return dns_label(f"{workload.name[:36]}-{label}-{item.port}")


def tool_service(
    workload: WorkloadRef, spec: BaseSpec, trace_id: str | None, item: Connection
) -> dict[str, Any]:
    meta = object_meta(workload, spec, trace_id, name=service_name(workload, item))
    meta["annotations"].update(access_annotations(item))
    port: dict[str, Any] = {
        "name": "tool",
        "port": item.external if item.external and item.service_type != "NodePort" else item.port,
        "targetPort": item.port,
        "protocol": "TCP",
    }
    if item.service_type == "NodePort" and item.external:
        port["nodePort"] = item.external
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": item.service_type,
            "selector": selector(workload)["matchLabels"],
            "ports": [port],
        },
    }


def tool_ports(tools: list[Connection]) -> list[dict[str, Any]]:
    """The container ports the connections reach."""
    return [container_port(item.port, item.name or item.tool_type) for item in tools]


def tool_services(
    workload: WorkloadRef,
    spec: BaseSpec,
    trace_id: str | None,
    top: dict[str, Any],
    tools: list[Connection],
) -> list[dict[str, Any]]:
    """A Service per connection, owned by ``top``."""
    return owned([tool_service(workload, spec, trace_id, item) for item in tools], top)
