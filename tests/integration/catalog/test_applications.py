"""Applications round trip on real NATS and PostgreSQL: a person creates one (its secret shown
once), the application exchanges its client id and secret for a token every service accepts,
and once deleted it gets none."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from berth.catalog.bootstrap import build as build_catalog
from berth.catalog.config import CatalogSettings
from berth.contracts.applications import (
    ApplicationCreatedReply,
    ApplicationCreateRequest,
    ApplicationDeleteReply,
    ApplicationDeleteRequest,
    ApplicationListReply,
    ApplicationListRequest,
    ApplicationTokenReply,
    ApplicationTokenRequest,
)
from berth.contracts.envelope import Actor
from berth.contracts.subjects import (
    RPC_CATALOG_APPLICATIONS_CREATE,
    RPC_CATALOG_APPLICATIONS_DELETE,
    RPC_CATALOG_APPLICATIONS_LIST,
    RPC_CATALOG_APPLICATIONS_TOKEN,
)
from berth.shared import bus
from berth.shared.errors import PermanentError
from berth.shared.identity import verifier_from_settings
from berth.shared.service import Service
from tests.identity import ask

ADMIN = Actor(email="admin@example.com")


@contextlib.asynccontextmanager
async def running(service: Service) -> AsyncIterator[Service]:
    await service.app.start()
    try:
        yield service
    finally:
        await service.app.stop()


async def exchange(nc: Any, client_id: str, secret: str) -> ApplicationTokenReply:
    # No bearer token: the client credentials are what proves the application.
    reply: ApplicationTokenReply = await bus.ask(
        nc,
        RPC_CATALOG_APPLICATIONS_TOKEN,
        ApplicationTokenRequest(clientId=client_id, clientSecret=secret),
        ApplicationTokenReply,
        timeout=10,
    )
    return reply


async def test_an_application_gets_a_token_with_its_secret_until_it_is_deleted(
    nats_url: str, database_url: str, nc: Any, tmp_path: Path
) -> None:
    settings = CatalogSettings(
        nats_url=nats_url, database_url=database_url, keys_dir=tmp_path, seed_demo=False
    )
    assert settings.application_signing_key is not None
    async with running(build_catalog(settings)):
        created: ApplicationCreatedReply = await ask(
            nc,
            RPC_CATALOG_APPLICATIONS_CREATE,
            ApplicationCreateRequest(name="ci-pipeline", actor=ADMIN),
            ApplicationCreatedReply,
            timeout=10,
        )
        assert created.error is None and created.clientSecret
        assert created.clientId == "ci-pipeline"
        assert created.application and created.application.createdBy == ADMIN.email

        # Only a hash is stored: the secret appears nowhere in the database.
        engine = create_async_engine(database_url)
        async with engine.connect() as conn:
            stored = (
                await conn.execute(text("SELECT secret_hash FROM catalog.applications"))
            ).scalar_one()
        await engine.dispose()
        assert created.clientSecret not in stored and stored.startswith("$argon2id$")

        # A second one of the same name is refused.
        again: ApplicationCreatedReply = await ask(
            nc,
            RPC_CATALOG_APPLICATIONS_CREATE,
            ApplicationCreateRequest(name="ci-pipeline", actor=ADMIN),
            ApplicationCreatedReply,
            timeout=10,
        )
        assert again.error == 'application "ci-pipeline" already exists'

        # Creating needs a person's token: without one, the request is refused by name.
        with pytest.raises(PermanentError, match="unauthenticated: no bearer token"):
            await bus.ask(
                nc,
                RPC_CATALOG_APPLICATIONS_CREATE,
                ApplicationCreateRequest(name="sneaky"),
                ApplicationCreatedReply,
                timeout=10,
            )

        wrong = await exchange(nc, "ci-pipeline", "not-the-secret")
        assert wrong.accessToken is None and wrong.error == "unknown client id or wrong secret"
        unknown = await exchange(nc, "nobody", created.clientSecret)
        assert unknown.error == wrong.error

        issued = await exchange(nc, "ci-pipeline", created.clientSecret)
        assert issued.accessToken and issued.expiresIn == settings.application_token_seconds
        # Every service trusts it: the application is the verified actor.
        actor = await verifier_from_settings(settings).verify(issued.accessToken)
        assert (actor.kind, actor.subject, actor.email) == (
            "application",
            "ci-pipeline",
            "application:ci-pipeline",
        )
        # ...and acts with it, with the rights access rules give it: none yet.
        refused: ApplicationListReply = await bus.ask(
            nc,
            RPC_CATALOG_APPLICATIONS_LIST,
            ApplicationListRequest(),
            ApplicationListReply,
            timeout=10,
            token=issued.accessToken,
        )
        assert refused.applications == [] and refused.error == (
            "forbidden: application:ci-pipeline may not list applications in the tenant "
            "(no access rule grants applications.read there)"
        )
        listed: ApplicationListReply = await ask(
            nc,
            RPC_CATALOG_APPLICATIONS_LIST,
            ApplicationListRequest(actor=ADMIN),
            ApplicationListReply,
            timeout=10,
        )
        [view] = listed.applications
        assert view.name == "ci-pipeline" and view.lastLogin is not None

        deleted: ApplicationDeleteReply = await ask(
            nc,
            RPC_CATALOG_APPLICATIONS_DELETE,
            ApplicationDeleteRequest(name="ci-pipeline", actor=ADMIN),
            ApplicationDeleteReply,
            timeout=10,
        )
        assert deleted.deleted and deleted.deleted.name == "ci-pipeline"
        gone = await exchange(nc, "ci-pipeline", created.clientSecret)
        assert gone.accessToken is None and gone.error == "unknown client id or wrong secret"


async def test_without_a_signing_key_no_application_token_is_issued(
    nats_url: str, database_url: str, nc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BERTH_APPLICATION_SIGNING_KEY", raising=False)
    settings = CatalogSettings(
        nats_url=nats_url, database_url=database_url, keys_dir=tmp_path, seed_demo=False
    )
    assert os.environ.get("BERTH_APPLICATION_SIGNING_KEY") is None
    async with running(build_catalog(settings)):
        reply = await exchange(nc, "anything", "secret")
        assert reply.error and "no application signing key" in reply.error
