"""Composition root of the intake service."""

from __future__ import annotations

from faststream import FastStream
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.intake import store
from berth.intake.catalog_client import CatalogClient, ProjectDirectory, ResilientCatalog
from berth.intake.config import IntakeSettings
from berth.intake.subscriptions import register
from berth.intake.tables import metadata
from berth.shared.service import Service


def build(
    settings: IntakeSettings,
    *,
    engine: AsyncEngine | None = None,
    directory: ProjectDirectory | None = None,
) -> Service:
    service = Service(settings, metadata, migrations_package="berth.intake", engine=engine)
    primary = directory or CatalogClient(
        lambda: service.broker.connection, timeout=settings.catalog_timeout_seconds
    )
    register(service, ResilientCatalog(primary, store.reader(service.reads)))
    return service


def build_app(settings: IntakeSettings | None = None) -> FastStream:
    return build(settings or IntakeSettings()).app
