"""Composition root of the ownership service."""

from __future__ import annotations

from faststream import FastStream
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.ownership.config import OwnershipSettings
from berth.ownership.subscriptions import register
from berth.ownership.tables import metadata
from berth.ownership.workloads import ask_intake
from berth.shared.service import Service


def build(settings: OwnershipSettings, *, engine: AsyncEngine | None = None) -> Service:
    service = Service(settings, metadata, migrations_package="berth.ownership", engine=engine)
    targets = ask_intake(lambda: service.broker.connection, timeout=settings.intake_timeout_seconds)
    register(service, targets)
    return service


def build_app(settings: OwnershipSettings | None = None) -> FastStream:
    return build(settings or OwnershipSettings()).app
