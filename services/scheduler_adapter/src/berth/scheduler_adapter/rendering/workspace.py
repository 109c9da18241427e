"""Workspace → a single-replica ``apps/v1`` StatefulSet plus a Service per tool connection.

A StatefulSet rather than a Deployment because a workspace is a pet: a stable pod name, and
its volume claims survive a stop and a resume. Tool connections: ``rendering.tools``.
"""

from __future__ import annotations

from typing import Any

from berth.contracts.events import WorkloadRef
from berth.contracts.workload import WorkspaceSubmission
from berth.scheduler_adapter.rendering.capabilities import ClusterCapabilities
from berth.scheduler_adapter.rendering.metadata import object_meta, selector
from berth.scheduler_adapter.rendering.pod import pod_template
from berth.scheduler_adapter.rendering.registry import render_kind
from berth.scheduler_adapter.rendering.storage import render_storage
from berth.scheduler_adapter.rendering.tools import connections, tool_ports, tool_services
from berth.scheduler_adapter.rendering.training import claims


@render_kind.register
def render_workspace(
    submission: WorkspaceSubmission,
    workload: WorkloadRef,
    trace_id: str | None,
    capabilities: ClusterCapabilities,  # noqa: ARG001 (the same on every cluster)
) -> list[dict[str, Any]]:
    spec = submission.spec
    tools = connections(spec)
    storage = render_storage(workload, spec, trace_id)
    template = pod_template(
        workload,
        spec,
        trace_id=trace_id,
        restart_policy="Always",
        container_name=workload.name,
        ports=tool_ports(tools),
        storage=storage,
    )
    stateful_set = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": object_meta(workload, spec, trace_id),
        "spec": {
            "replicas": 1,
            "serviceName": workload.name,
            "selector": selector(workload),
            "template": template,
        },
    }
    services = tool_services(workload, spec, trace_id, stateful_set, tools)
    return [stateful_set, *services, *claims(storage, stateful_set)]
