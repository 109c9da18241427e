"""Composition root of the policy service."""

from __future__ import annotations

from faststream import FastStream
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.policy.config import PolicySettings
from berth.policy.subscriptions import register
from berth.policy.tables import metadata
from berth.shared.service import Service


def build(settings: PolicySettings, *, engine: AsyncEngine | None = None) -> Service:
    service = Service(settings, metadata, migrations_package="berth.policy", engine=engine)
    register(service)
    return service


def build_app(settings: PolicySettings | None = None) -> FastStream:
    return build(settings or PolicySettings()).app
