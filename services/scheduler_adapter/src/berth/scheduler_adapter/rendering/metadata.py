"""Object metadata every rendered object shares: identity labels, queue, the spec's own metadata."""

from __future__ import annotations

import json
from typing import Any

from berth.contracts.events import WorkloadRef
from berth.contracts.runnable import kai_priority_class
from berth.contracts.workload import BaseSpec, NameValue
from berth.scheduler_adapter import labels


def name_values(items: list[NameValue] | None) -> dict[str, str]:
    return {item.name: item.value or "" for item in items or () if not item.exclude}


def identity_labels(workload: WorkloadRef) -> dict[str, str]:
    return {
        labels.WORKLOAD_ID_LABEL: workload.workloadId,
        labels.WORKLOAD_NAME_LABEL: workload.name,
        labels.PROJECT_LABEL: workload.project,
    }


def selector(workload: WorkloadRef) -> dict[str, Any]:
    return {"matchLabels": {labels.WORKLOAD_ID_LABEL: workload.workloadId}}


def priority_class(spec: BaseSpec) -> str | None:
    # KAI ships train, build-preemptible, build and inference; Run:ai's interactive-preemptible
    # is KAI's build-preemptible (a missing class would silently fall back to priority 0).
    return kai_priority_class(spec)


def workload_labels(workload: WorkloadRef, spec: BaseSpec) -> dict[str, str]:
    # The spec's labels go first so a user label can never overwrite berth's identity labels
    # or the queue the scheduler bills the workload to.
    result = name_values(spec.labels)
    result[labels.QUEUE_LABEL] = workload.queue
    if spec.nodePools:
        result[labels.NODE_POOL_LABEL] = spec.nodePools[0]
    priority = priority_class(spec)
    if priority:
        result[labels.PRIORITY_CLASS_LABEL] = priority
    result.update(identity_labels(workload))
    return result


def workload_annotations(
    workload: WorkloadRef, spec: BaseSpec, trace_id: str | None
) -> dict[str, str]:
    result = name_values(spec.annotations)
    result[labels.WORKLOAD_ID_ANNOTATION] = workload.workloadId
    if trace_id:
        result[labels.TRACE_ID_ANNOTATION] = trace_id
    return result


def object_meta(
    workload: WorkloadRef, spec: BaseSpec, trace_id: str | None, *, name: str | None = None
) -> dict[str, Any]:
    annotations = workload_annotations(workload, spec, trace_id)
    if spec.relatedUrls:
        # For consoles and the CLI to link to; no controller reads it.
        annotations[labels.RELATED_URLS_ANNOTATION] = json.dumps(
            [url.model_dump(exclude_none=True) for url in spec.relatedUrls], sort_keys=True
        )
    return {
        "name": name or workload.name,
        "namespace": workload.namespace,
        "labels": workload_labels(workload, spec),
        "annotations": annotations,
    }


def owner_reference(top: dict[str, Any]) -> dict[str, Any]:
    """A reference making ``top`` the owner, so deleting it garbage-collects the object.

    The owner's uid only exists once the API server has created it: the renderer leaves it
    empty and the kubernetes backend fills it from the applied top object before applying the
    objects it owns. ``blockOwnerDeletion`` lets a foreground delete of the top object wait
    until they are gone.
    """
    return {
        "apiVersion": top["apiVersion"],
        "kind": top["kind"],
        "name": top["metadata"]["name"],
        "uid": "",
        "controller": False,
        "blockOwnerDeletion": True,
    }


def owned(objects: list[dict[str, Any]], top: dict[str, Any]) -> list[dict[str, Any]]:
    """``objects`` with ``top`` as their owner."""
    reference = owner_reference(top)
    for obj in objects:
        obj["metadata"]["ownerReferences"] = [dict(reference)]
    return objects
