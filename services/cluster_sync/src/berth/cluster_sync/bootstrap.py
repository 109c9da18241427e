"""Composition root of the cluster-sync service."""

from __future__ import annotations

from faststream import FastStream
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.cluster_sync.config import ClusterSyncSettings
from berth.cluster_sync.subscriptions import register
from berth.cluster_sync.tables import metadata
from berth.shared.service import Service


def build(settings: ClusterSyncSettings, *, engine: AsyncEngine | None = None) -> Service:
    service = Service(settings, metadata, migrations_package="berth.cluster_sync", engine=engine)
    register(service)
    return service


def build_app(settings: ClusterSyncSettings | None = None) -> FastStream:
    return build(settings or ClusterSyncSettings()).app
