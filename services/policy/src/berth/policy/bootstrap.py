"""Composition root of the policy service."""

from __future__ import annotations

from faststream import FastStream
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.policy.catalog_client import CatalogProjects, ProjectResolver
from berth.policy.config import PolicySettings
from berth.policy.subscriptions import register
from berth.policy.tables import metadata
from berth.shared.service import Service


def build(
    settings: PolicySettings,
    *,
    engine: AsyncEngine | None = None,
    resolve: ProjectResolver | None = None,
) -> Service:
    service = Service(settings, metadata, migrations_package="berth.policy", engine=engine)
    resolver = resolve or CatalogProjects(
        lambda: service.broker.connection, timeout=settings.catalog_timeout_seconds
    )
    register(service, resolver)
    return service


def build_app(settings: PolicySettings | None = None) -> FastStream:
    return build(settings or PolicySettings()).app
