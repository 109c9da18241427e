"""Composition root of the intake service."""

from __future__ import annotations

from typing import Any

from faststream import FastStream
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.intake.catalog_client import CatalogClient, ProjectDirectory, ResilientCatalog
from berth.intake.config import IntakeSettings
from berth.intake.subscriptions import register
from berth.intake.tables import metadata
from berth.shared.service import Service


class _LateCatalogClient:
    """The catalog client needs the broker's connection, which exists only once started."""

    def __init__(self, service: Service, timeout: float) -> None:
        self._service = service
        self._timeout = timeout

    def _client(self) -> CatalogClient:
        return CatalogClient(self._service.broker.connection, timeout=self._timeout)

    async def lookup(self, requests: Any) -> Any:
        return await self._client().lookup(requests)

    async def assets(self, refs: Any, span: Any) -> Any:
        return await self._client().assets(refs, span)


def build(
    settings: IntakeSettings,
    *,
    engine: AsyncEngine | None = None,
    directory: ProjectDirectory | None = None,
) -> Service:
    service = Service(settings, metadata, migrations_package="berth.intake", engine=engine)
    primary = directory or _LateCatalogClient(service, settings.catalog_timeout_seconds)
    register(service, ResilientCatalog(primary, service.engine))
    return service


def build_app(settings: IntakeSettings | None = None) -> FastStream:
    return build(settings or IntakeSettings()).app
