"""Composition root of the scheduler-adapter: the cluster side of berth.

Besides turning approved workloads into cluster objects, it is its cluster's agent: it reports the
cluster's config to cluster-sync at start and applies the config cluster-sync sends down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from faststream import FastStream
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.contracts.roles import SCHEDULER_ADAPTER
from berth.scheduler_adapter import handlers
from berth.scheduler_adapter.backend import ClusterBackend, WorkloadSnapshot
from berth.scheduler_adapter.config import SchedulerAdapterSettings
from berth.scheduler_adapter.credentials import CredentialDelivery, agent_keys
from berth.scheduler_adapter.kubernetes import KubernetesCluster
from berth.scheduler_adapter.lease import agent_elector
from berth.scheduler_adapter.pods import PodReader
from berth.scheduler_adapter.subscriptions import register, register_pod_queries
from berth.scheduler_adapter.tables import metadata
from berth.shared.service import Service

log = logging.getLogger(__name__)


def default_backend(settings: SchedulerAdapterSettings) -> ClusterBackend:
    """The cluster's API server: a real one, or a simulated cluster's (which serves the same
    API from a process of its own; ``berth up`` starts one per cluster)."""
    return KubernetesCluster(
        kubeconfig=settings.kubeconfig,
        context=settings.kube_context,
        qps=settings.kube_qps,
        burst=settings.kube_burst,
        config_namespace=settings.kube_config_namespace,
        config_map=settings.kube_config_map,
        resync_seconds=settings.kube_resync_seconds,
        # Snapshots are batched as the bus's messages are (``fetch_timeout``).
        snapshot_gather=settings.fetch_timeout,
    )


def build(
    settings: SchedulerAdapterSettings,
    *,
    engine: AsyncEngine | None = None,
    backend: ClusterBackend | None = None,
) -> Service:
    service = Service(
        settings,
        metadata,
        migrations_package="berth.scheduler_adapter",
        engine=engine,
        role=SCHEDULER_ADAPTER,
    )
    cluster = CredentialDelivery(
        backend or default_backend(settings),
        nc=lambda: service.broker.connection,
        cluster_id=settings.cluster_id,
        keys=lambda: agent_keys(settings.keys_dir, settings.cluster_id),
        timeout=settings.catalog_timeout_seconds,
    )
    register(service, cluster, settings.cluster_id, cluster)
    if isinstance(cluster.inner, PodReader):
        register_pod_queries(service, cluster.inner, settings.cluster_id)

    async def record(batch: list[WorkloadSnapshot]) -> None:
        async with service.unit_of_work() as unit:
            await handlers.record_snapshots(batch, unit, backend=cluster, tracer=service.tracer)

    # Opened before the resync applies anything, so that every phase the re-applied workloads
    # go through is seen; opened later, the first snapshot only shows where they are by then.
    feed: list[AsyncIterator[list[WorkloadSnapshot]]] = []

    async def watch() -> None:
        async for batch in feed.pop() if feed else cluster.snapshots():
            # A snapshot batch is only ever offered once: keep trying rather than lose a phase.
            delay = 0.2
            while True:
                try:
                    await record(batch)
                    break
                except Exception:
                    log.warning(
                        "recording %d snapshots failed; retrying", len(batch), exc_info=True
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)

    async def start() -> None:
        async with service.unit_of_work() as unit:
            await handlers.claim_schema(unit, settings.cluster_id)
        await cluster.start()
        report = await handlers.config_report(cluster, settings.cluster_id)
        feed.append(cluster.snapshots())
        began = time.monotonic()
        listing = await cluster.listed()
        listed = time.monotonic()
        async with service.unit_of_work() as unit:
            resynced = await handlers.resync(unit, listing, backend=cluster)
            unit.emit(report)
        log.info(
            "cluster %s (%s): %d workloads resynced, %d of them applied again "
            "(listing %.2fs, then %.2fs in its transaction)",
            settings.cluster_id,
            cluster.name,
            resynced.unfinished,
            resynced.applied,
            listed - began,
            time.monotonic() - listed,
        )

    async def heartbeat() -> None:
        # Level-triggered agent: cluster-sync compares each report with the desired config and
        # sends it down again while they differ, so a setting the cluster lost comes back within
        # one interval, whatever happened in between.
        while True:
            await asyncio.sleep(settings.report_interval_seconds)
            try:
                report = await handlers.config_report(cluster, settings.cluster_id)
                async with service.unit_of_work() as unit:
                    unit.emit(report)
            except Exception:
                log.warning("reporting cluster %s failed", settings.cluster_id, exc_info=True)

    service.on_start(start)
    service.background(watch, "cluster-watch")
    service.background(heartbeat, "cluster-report")
    service.on_stop(cluster.close)
    if backend is None and settings.leader_election:
        # One agent works per cluster; its other replicas stand by (see lease).
        elector, leases = agent_elector(settings)
        service.lead_with(elector)
        service.on_stop(leases.close)
    return service


def build_app(settings: SchedulerAdapterSettings | None = None) -> FastStream:
    return build(settings or SchedulerAdapterSettings()).app
