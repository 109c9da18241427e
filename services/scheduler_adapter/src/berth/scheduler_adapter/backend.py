"""The port between the scheduler-adapter and a cluster: what it applies, what it observes.

Snapshots are Kubernetes-shaped (pod phases, top-object conditions) so the simulated cluster
and a real one report alike and ``phases.derive_phase`` serves both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from berth.scheduler_adapter.top_kinds import templates, top_kind


def is_top(obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` is the object a workload's status is read from (``top_kinds``); every
    other object rendered for a workload (tool Service, claim, autoscaler, ...) supports it and
    is owned by it."""
    return top_kind(obj) is not None


def top_object(objects: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((obj for obj in objects if is_top(obj)), None)


def referenced_secrets(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    """Names of the Secrets the objects' pods read: env ``secretKeyRef``, ``envFrom``
    ``secretRef``, ``secret`` volumes and projected secrets, image pull secrets. Pods are made
    from the pod templates of the top objects (``top_kinds``): only those are read, not the
    rest of the objects (metadata, claims, Services)."""
    found: set[str] = set()
    # Every workload applied is read through here, on the agent and on a simulated cluster: a
    # loop over a stack; dicts and lists are told apart from the scalars (most of the values)
    # before the (slower) abstract Mapping is asked about anything.
    stack: list[Any] = [template for obj in objects if is_top(obj) for template in templates(obj)]
    while stack:
        node = stack.pop()
        if isinstance(node, (dict, Mapping)):
            for key, value in node.items():
                if key in _SECRET_KEYS:
                    if key == "imagePullSecrets":
                        if isinstance(value, list):
                            found.update(
                                str(v.get("name", "")) for v in value if isinstance(v, Mapping)
                            )
                    elif isinstance(value, Mapping):
                        if key == "secret":
                            found.add(str(value.get("secretName") or value.get("name") or ""))
                        else:
                            found.add(str(value.get("name", "")))
                if isinstance(value, (dict, list)) or (
                    not isinstance(value, (str, int, float)) and isinstance(value, Mapping)
                ):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    found.discard("")
    return found


_SECRET_KEYS = frozenset({"secretKeyRef", "secretRef", "secret", "imagePullSecrets"})


ObjectKey = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return (
        str(obj.get("apiVersion", "")),
        str(obj.get("kind", "")),
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
    )


@dataclass(frozen=True)
class Listing:
    """What a backend's listing of the cluster holds of berth's objects: the cluster state a
    restarted agent reconciles its records against."""

    # The (apiVersion, kind) listed in full; None: every kind. Of another kind, nothing can be
    # told (the backend does not list it): an object of it may be there or not.
    kinds: frozenset[tuple[str, str]] | None
    objects: frozenset[ObjectKey]

    def holds(self, obj: Mapping[str, Any]) -> bool:
        """Whether ``obj`` is known to be in the cluster."""
        key = object_key(obj)
        return (self.kinds is None or key[:2] in self.kinds) and key in self.objects


@dataclass(frozen=True)
class PodStatus:
    name: str
    phase: str  # Kubernetes pod phase: Pending | Running | Succeeded | Failed
    scheduled: bool
    ready: bool
    reason: str = ""
    message: str = ""
    node: str | None = None


@dataclass(frozen=True)
class WorkloadSnapshot:
    workload_id: str
    namespace: str
    exists: bool  # False once every object of the workload is gone
    # The top object's true conditions as (type, reason, message), e.g. ("Complete", "", "").
    conditions: tuple[tuple[str, str, str], ...]
    pods: tuple[PodStatus, ...]
    expected_pods: int  # pods the top object wants
    suspended: bool = False
    # The top object's berth.dev/phase-note: how the cluster runs the workload differently
    # from what was asked; the phase message when there is no more pressing one.
    note: str = ""
    # The top object is being deleted (a foreground delete waits for what it owns).
    deleting: bool = False


class ClusterBackend(Protocol):
    name: str  # "simulated" | "kubernetes"

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def apply(self, objects: list[dict[str, Any]]) -> None:
        """Create or update each object, keyed by (apiVersion, kind, namespace, name)."""
        ...

    async def apply_secrets(self, secrets: list[dict[str, Any]]) -> None:
        """Create or update core/v1 Secrets (credential values for workloads' pods). They
        belong to no workload: several workloads of a namespace share one."""
        ...

    async def delete(self, namespace: str, workload_id: str) -> None:
        """Delete every object labelled with the workload id; its pods go with them."""
        ...

    async def suspend(self, namespace: str, workload_id: str) -> None: ...

    async def resume(self, namespace: str, workload_id: str) -> None: ...

    async def listed(self) -> Listing:
        """The cluster's objects as the backend's first full listing found them (waiting for
        it, within a bound: a kind not listed by then is not in the ``Listing``)."""
        ...

    async def adopt(self, objects: list[dict[str, Any]]) -> None:
        """Objects found in the cluster as rendered, so not applied again: what they need
        besides themselves (credential Secrets) is seen to."""
        ...

    def snapshots(self) -> AsyncIterator[list[WorkloadSnapshot]]:
        """Batches of snapshots of workloads whose state changed; a new subscriber first
        receives every known workload (a resync)."""
        ...

    async def read_config(self) -> dict[str, Any]:
        """The cluster's public config: workloadOwnershipProtection, knative, clusterVersion,
        nodePools and gpus."""
        ...

    async def set_config(self, settings: dict[str, Any]) -> None: ...
