"""The agent's lease: a Kubernetes Lease (coordination.k8s.io/v1) in its cluster, which the
replicas of one cluster's agent compete for (``berth.shared.leadership``). The simulated cluster
serves Leases as a real API server does, so the same code elects the agent on both."""

from __future__ import annotations

import math
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes_asyncio.client import ApiClient, CoordinationV1Api, V1Lease
from kubernetes_asyncio.client.exceptions import ApiException

from berth.scheduler_adapter.config import SchedulerAdapterSettings
from berth.scheduler_adapter.kubernetes import load_configuration
from berth.shared.leadership import LeaderElector, LeaseConflict, LeaseRecord, LeaseTiming

# Each lease call gives up after this long: a hung API server must not hold a renewal past
# the renew deadline.
REQUEST_TIMEOUT_SECONDS = 4.0


def lease_name(cluster_id: str) -> str:
    return f"berth-agent-{cluster_id.lower().replace('_', '-')}"


def identity(configured: str | None = None) -> str:
    """This replica's name as the lease's holder: ``configured`` (``BERTH_LEASE_IDENTITY``,
    stable across restarts of the replica) when given; else its host, its process and a few
    random characters (two agents in one process, as tests run them, are two replicas)."""
    if configured:
        return configured
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class KubernetesLeases:
    """One Lease object, read and written with optimistic concurrency (resourceVersion)."""

    def __init__(
        self, *, kubeconfig: Path | None, context: str | None, namespace: str, name: str
    ) -> None:
        self._kubeconfig = kubeconfig
        self._context = context
        self.namespace = namespace
        self.name = name
        self._api: ApiClient | None = None

    async def _leases(self) -> CoordinationV1Api:
        if self._api is None:
            self._api = ApiClient(await load_configuration(self._kubeconfig, self._context))
        return CoordinationV1Api(self._api)

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()
            self._api = None

    async def get(self) -> LeaseRecord | None:
        api = await self._leases()
        try:
            lease = await api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _record(lease)

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        api = await self._leases()
        with _conflicts_refused():
            lease = await api.create_namespaced_lease(
                self.namespace,
                self._body(record),  # type: ignore[arg-type]
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        return _record(lease)

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        api = await self._leases()
        with _conflicts_refused():
            lease = await api.replace_namespaced_lease(
                self.name,
                self.namespace,
                self._body(record),  # type: ignore[arg-type]
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        return _record(lease)

    def _body(self, record: LeaseRecord) -> dict[str, Any]:
        # A plain body rather than a V1Lease: the client would write its times with
        # isoformat(), which drops the fraction at a whole second, and MicroTime wants six
        # digits.
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if record.version:
            metadata["resourceVersion"] = record.version
        spec: dict[str, Any] = {
            "holderIdentity": record.holder,
            "leaseDurationSeconds": max(1, math.ceil(record.duration_seconds)),
            "leaseTransitions": record.transitions,
        }
        for key, value in (("acquireTime", record.acquired_at), ("renewTime", record.renewed_at)):
            if value is not None:
                spec[key] = _micro_time(value)
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }


def _micro_time(value: datetime) -> str:
    # Kubernetes' MicroTime: RFC 3339 in UTC with exactly six fractional digits.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(lease: V1Lease) -> LeaseRecord:
    spec = lease.spec
    return LeaseRecord(
        holder=(spec.holder_identity if spec else None) or "",
        duration_seconds=float((spec.lease_duration_seconds if spec else None) or 0),
        acquired_at=spec.acquire_time if spec else None,
        renewed_at=spec.renew_time if spec else None,
        transitions=int((spec.lease_transitions if spec else None) or 0),
        version=str(lease.metadata.resource_version or ""),
    )


def agent_elector(settings: SchedulerAdapterSettings) -> tuple[LeaderElector, KubernetesLeases]:
    """The elector of this cluster's agent replicas, and its lease store (to close at stop)."""
    store = KubernetesLeases(
        kubeconfig=settings.kubeconfig,
        context=settings.kube_context,
        namespace=settings.kube_config_namespace,
        name=lease_name(settings.cluster_id),
    )
    timing = LeaseTiming(
        duration=settings.lease_duration_seconds,
        renew_deadline=settings.lease_renew_deadline_seconds,
        retry=settings.lease_retry_seconds,
    )
    return LeaderElector(store, identity(settings.lease_identity), timing), store


@contextmanager
def _conflicts_refused() -> Iterator[None]:
    """409 from the API server (the name is taken, or the lease changed since it was read):
    another replica won; the elector treats it as a lost race, not an error."""
    try:
        yield
    except ApiException as exc:
        if exc.status == 409:
            raise LeaseConflict(str(exc.reason)) from None
        raise
