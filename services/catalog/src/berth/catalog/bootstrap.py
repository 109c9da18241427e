"""Composition root of the catalog service."""

from __future__ import annotations

from faststream import FastStream
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.catalog import handlers
from berth.catalog.config import CatalogSettings
from berth.catalog.subscriptions import register
from berth.catalog.tables import metadata
from berth.shared.service import Service


def build(settings: CatalogSettings, *, engine: AsyncEngine | None = None) -> Service:
    service = Service(settings, metadata, migrations_package="berth.catalog", engine=engine)
    register(service, settings.cluster_id)

    async def seed() -> None:
        if not settings.seed_demo:
            return
        async with service.unit_of_work() as unit:
            for event in await handlers.seed_demo(unit.conn, settings.cluster_id):
                unit.emit(event)

    service.on_start(seed)
    return service


def build_app(settings: CatalogSettings | None = None) -> FastStream:
    return build(settings or CatalogSettings()).app
