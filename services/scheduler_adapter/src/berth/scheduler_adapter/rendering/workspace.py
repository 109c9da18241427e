"""Workspace → a single-replica ``apps/v1`` StatefulSet.

A StatefulSet rather than a Deployment because a workspace is a pet: a stable pod name and,
once storage is rendered, its volume claims survive a stop and a resume.
"""

from __future__ import annotations

from typing import Any

from berth.contracts.events import WorkloadRef
from berth.contracts.workload import WorkspaceSubmission
from berth.scheduler_adapter.rendering.metadata import object_meta, selector
from berth.scheduler_adapter.rendering.pod import pod_template


def render_workspace(
    workload: WorkloadRef, submission: WorkspaceSubmission, trace_id: str | None
) -> list[dict[str, Any]]:
    spec = submission.spec
    template = pod_template(
        workload, spec, trace_id=trace_id, restart_policy="Always", container_name=workload.name
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
    return [stateful_set]
