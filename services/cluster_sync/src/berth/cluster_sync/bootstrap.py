"""Composition root of the cluster-sync service."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from faststream import FastStream
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.cluster_sync import handlers
from berth.cluster_sync.config import ClusterSyncSettings
from berth.cluster_sync.subscriptions import register
from berth.cluster_sync.tables import metadata
from berth.shared.service import Service

log = logging.getLogger(__name__)


def build(settings: ClusterSyncSettings, *, engine: AsyncEngine | None = None) -> Service:
    service = Service(settings, metadata, migrations_package="berth.cluster_sync", engine=engine)
    register(service)
    after = timedelta(seconds=settings.disconnect_after_seconds)

    async def watch_agents() -> None:
        # Agents report on a timer; silence is the only sign that one is gone.
        while True:
            await asyncio.sleep(settings.liveness_check_seconds)
            try:
                async with service.unit_of_work() as unit:
                    marked = await handlers.mark_disconnected(datetime.now(UTC), unit, after=after)
                for cluster_id in marked:
                    log.warning("cluster %s disconnected: its agent stopped reporting", cluster_id)
            except Exception:
                log.warning("checking the agents' reports failed", exc_info=True)

    service.background(watch_agents, "agent-liveness")
    return service


def build_app(settings: ClusterSyncSettings | None = None) -> FastStream:
    return build(settings or ClusterSyncSettings()).app
