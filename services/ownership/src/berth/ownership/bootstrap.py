"""Composition root of the ownership service."""

from __future__ import annotations

from faststream import FastStream
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.ownership.config import OwnershipSettings
from berth.ownership.subscriptions import register
from berth.ownership.tables import metadata
from berth.shared.service import Service


def build(settings: OwnershipSettings, *, engine: AsyncEngine | None = None) -> Service:
    service = Service(settings, metadata, migrations_package="berth.ownership", engine=engine)
    register(service)
    return service


def build_app(settings: OwnershipSettings | None = None) -> FastStream:
    return build(settings or OwnershipSettings()).app
