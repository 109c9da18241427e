"""Composition root of the catalog service."""

from __future__ import annotations

import asyncio
import logging

from faststream import FastStream
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.catalog import applications, credentials, handlers
from berth.catalog.config import CatalogSettings
from berth.catalog.keys import KeyProvider, LocalKeyProvider, sealing_keys
from berth.catalog.store import SqlCatalogStore
from berth.catalog.subscriptions import register
from berth.catalog.tables import metadata
from berth.catalog.usage import ask_intake
from berth.shared.identity import SigningKey
from berth.shared.service import Service

log = logging.getLogger(__name__)


def build(
    settings: CatalogSettings,
    *,
    engine: AsyncEngine | None = None,
    storage_keys: KeyProvider | None = None,
) -> Service:
    service = Service(settings, metadata, migrations_package="berth.catalog", engine=engine)
    keys = credentials.Keys(
        lambda: storage_keys or LocalKeyProvider.from_dir(settings.keys_dir),
        lambda: sealing_keys(settings.keys_dir),
    )
    workloads = ask_intake(
        lambda: service.broker.connection, timeout=settings.intake_timeout_seconds
    )
    register(service, settings.cluster_id, keys, workloads, application_issuer(settings))

    async def encrypt_legacy_values() -> None:
        keys.load()
        async with service.unit_of_work() as unit:
            count = await credentials.encrypt_legacy(SqlCatalogStore.of(unit), keys.storage)
        if count:
            log.info("encrypted %d credential values stored in clear by an older version", count)

    async def seed() -> None:
        async with service.unit_of_work() as unit:
            db = SqlCatalogStore.of(unit)
            if settings.seed_demo:
                for event in await handlers.seed_demo(db, settings.cluster_id):
                    unit.emit(event)
            for rule in await handlers.bootstrap_access(
                db, admin=settings.admin, demo=settings.seed_demo, cluster_id=settings.cluster_id
            ):
                unit.emit(rule)
        if not settings.admin:
            log.warning(
                "no administrator given (BERTH_ADMIN): only existing access rules grant anything"
            )

    async def make_decoy() -> None:
        await asyncio.to_thread(applications.decoy)

    service.on_start(encrypt_legacy_values)
    service.on_start(seed)
    # Ready before the first token exchange of an unknown client, which would otherwise take
    # longer than a known one's.
    service.background(make_decoy, "application-decoy-hash")
    return service


def application_issuer(settings: CatalogSettings) -> applications.Issuer:
    path = settings.application_signing_key
    loaded: list[SigningKey | None] = []

    def key() -> SigningKey | None:
        # Read once, at the first exchange: a catalog without the key still serves the rest.
        if not loaded:
            loaded.append(SigningKey.load(path) if path is not None else None)
        return loaded[0]

    return applications.Issuer(
        key=key,
        issuer=settings.application_issuer,
        audience=settings.oidc_audience,
        lifetime=settings.application_token_seconds,
    )


def build_app(settings: CatalogSettings | None = None) -> FastStream:
    return build(settings or CatalogSettings()).app
