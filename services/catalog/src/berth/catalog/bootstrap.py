"""Composition root of the catalog service."""

from __future__ import annotations

from faststream import FastStream
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.catalog import handlers
from berth.catalog.config import CatalogSettings
from berth.catalog.subscriptions import register
from berth.catalog.tables import metadata
from berth.shared import outbox
from berth.shared.service import Service


def build(settings: CatalogSettings, *, engine: AsyncEngine | None = None) -> Service:
    service = Service(settings, metadata, migrations_package="berth.catalog", engine=engine)
    register(service, settings.cluster_id)

    async def seed() -> None:
        if not settings.seed_demo:
            return
        async with service.engine.begin() as conn:
            events = await handlers.seed_demo(conn, settings.cluster_id)
            await outbox.write(conn, service.outbox_table, [outbox.outbox_row(e) for e in events])
        service.relay.wake()

    service.on_start(seed)
    return service


def build_app(settings: CatalogSettings | None = None) -> FastStream:
    return build(settings or CatalogSettings()).app
