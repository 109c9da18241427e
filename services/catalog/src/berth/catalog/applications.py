"""Applications: created with a secret shown once and kept as an Argon2id hash (libsodium's,
through PyNaCl), exchanged for a token signed by berth's application issuer.

Deleting an application stops new exchanges at once; a token it already holds stays valid
until it expires (``application_token_seconds``), as a bearer token does anywhere.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import nacl.exceptions
import nacl.pwhash
from sqlalchemy import Boolean, Column, DateTime, Table, Text, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from berth.catalog.tables import metadata
from berth.contracts.access import TENANT, AccessRule, Action, refusal
from berth.contracts.applications import (
    ApplicationCreatedReply,
    ApplicationCreateRequest,
    ApplicationDeleteReply,
    ApplicationDeleteRequest,
    ApplicationListReply,
    ApplicationListRequest,
    ApplicationTokenReply,
    ApplicationTokenRequest,
    ApplicationView,
)
from berth.contracts.envelope import Actor
from berth.shared.identity import SigningKey

applications = Table(
    "applications",
    metadata,
    Column("name", Text, primary_key=True),
    # Argon2id (libsodium's string format, with its salt and cost); never the secret itself.
    Column("secret_hash", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("last_login", DateTime(timezone=True), nullable=True),
)

REFUSED = "unknown client id or wrong secret"


@dataclass(frozen=True)
class Application:
    name: str
    secret_hash: str
    enabled: bool
    created_by: str
    created_at: datetime
    last_login: datetime | None = None

    def view(self) -> ApplicationView:
        return ApplicationView(
            name=self.name,
            enabled=self.enabled,
            createdBy=self.created_by,
            createdAt=self.created_at,
            lastLogin=self.last_login,
        )


class ApplicationStore(Protocol):
    async def insert(self, application: Application) -> bool:
        """False when the name is taken."""

    async def get(self, name: str) -> Application | None: ...

    async def all(self) -> list[Application]: ...

    async def delete(self, name: str) -> Application | None: ...

    async def logged_in(self, name: str, at: datetime) -> None: ...


Stores = Callable[[], AbstractAsyncContextManager[ApplicationStore]]

Rules = Callable[[], Awaitable[list[AccessRule]]]
"""The access rules in force (the catalog owns them)."""


async def _refusal(actor: Actor | None, verb: str, action: Action, rules: Rules) -> str | None:
    """Applications belong to the tenant: whoever holds ``applications.<action>`` there may
    manage them. Without this, anyone could recreate a deleted application under its old name
    and inherit every access rule still naming it."""
    return refusal(actor, verb, "applications", action, (TENANT,), await rules())


class SqlApplicationStore:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def insert(self, application: Application) -> bool:
        values = {
            "name": application.name,
            "secret_hash": application.secret_hash,
            "enabled": application.enabled,
            "created_by": application.created_by,
            "created_at": application.created_at,
        }
        stmt = insert(applications).values(values).on_conflict_do_nothing()
        return bool((await self._conn.execute(stmt)).rowcount)

    async def get(self, name: str) -> Application | None:
        row = (
            await self._conn.execute(select(applications).where(applications.c.name == name))
        ).first()
        return Application(**row._mapping) if row else None

    async def all(self) -> list[Application]:
        rows = await self._conn.execute(select(applications).order_by(applications.c.name))
        return [Application(**row._mapping) for row in rows]

    async def delete(self, name: str) -> Application | None:
        stmt = delete(applications).where(applications.c.name == name).returning(applications)
        row = (await self._conn.execute(stmt)).first()
        return Application(**row._mapping) if row else None

    async def logged_in(self, name: str, at: datetime) -> None:
        await self._conn.execute(
            update(applications).where(applications.c.name == name).values(last_login=at)
        )


def sql_stores(engine: AsyncEngine) -> Stores:
    @asynccontextmanager
    async def store() -> AsyncIterator[ApplicationStore]:
        async with engine.begin() as conn:
            yield SqlApplicationStore(conn)

    return store


@dataclass(frozen=True)
class Issuer:
    """What application tokens are minted with: berth's application key and whom they are for."""

    key: Callable[[], SigningKey | None]
    issuer: str
    audience: str
    lifetime: int


def hash_secret(secret: str) -> str:
    return nacl.pwhash.argon2id.str(secret.encode()).decode()


def secret_matches(secret_hash: str, secret: str) -> bool:
    try:
        return bool(nacl.pwhash.verify(secret_hash.encode(), secret.encode()))
    except nacl.exceptions.InvalidkeyError:
        return False


@functools.cache
def decoy() -> str:
    """A hash to check a secret against when the client id is unknown, so that the answer takes
    as long either way and does not tell which client ids exist. Made once per process, off the
    event loop and after start (``bootstrap``), not at import: an Argon2id hash is 64 MiB and
    0.1 s of CPU that every start of the catalog paid before it could answer."""
    return hash_secret(secrets.token_urlsafe(16))


async def create(
    request: ApplicationCreateRequest,
    *,
    stores: Stores,
    rules: Rules,
    now: Callable[[], datetime],
) -> ApplicationCreatedReply:
    if problem := await _refusal(request.actor, "create", "create", rules):
        return ApplicationCreatedReply(error=problem)
    secret = secrets.token_urlsafe(32)
    application = Application(
        name=request.name,
        # Argon2id is slow on purpose: off the event loop.
        secret_hash=await asyncio.to_thread(hash_secret, secret),
        enabled=True,
        created_by=request.actor.email if request.actor else "",
        created_at=now(),
    )
    async with stores() as store:
        if not await store.insert(application):
            return ApplicationCreatedReply(error=f'application "{request.name}" already exists')
    return ApplicationCreatedReply(
        application=application.view(), clientId=application.name, clientSecret=secret
    )


async def list_(
    request: ApplicationListRequest, *, stores: Stores, rules: Rules
) -> ApplicationListReply:
    if problem := await _refusal(request.actor, "list", "read", rules):
        return ApplicationListReply(error=problem)
    async with stores() as store:
        return ApplicationListReply(applications=[a.view() for a in await store.all()])


async def delete_(
    request: ApplicationDeleteRequest, *, stores: Stores, rules: Rules
) -> ApplicationDeleteReply:
    if problem := await _refusal(request.actor, "delete", "delete", rules):
        return ApplicationDeleteReply(error=problem)
    async with stores() as store:
        gone = await store.delete(request.name)
    if gone is None:
        return ApplicationDeleteReply(error=f'no application "{request.name}"')
    return ApplicationDeleteReply(deleted=gone.view())


async def token(
    request: ApplicationTokenRequest,
    *,
    stores: Stores,
    issuer: Issuer,
    now: Callable[[], datetime],
) -> ApplicationTokenReply:
    key = issuer.key()
    if key is None:
        return ApplicationTokenReply(
            error="application tokens are not issued here (no application signing key)"
        )
    async with stores() as store:
        application = await store.get(request.clientId)
    matches = await asyncio.to_thread(
        lambda: secret_matches(
            application.secret_hash if application else decoy(), request.clientSecret
        )
    )
    if application is None or not matches:
        return ApplicationTokenReply(error=REFUSED)
    if not application.enabled:
        return ApplicationTokenReply(error=f'application "{application.name}" is disabled')
    at = now()
    async with stores() as store:
        await store.logged_in(application.name, at)
    access = key.mint(
        issuer=issuer.issuer,
        audience=issuer.audience,
        subject=application.name,
        lifetime=issuer.lifetime,
        now=at.timestamp(),
    )
    return ApplicationTokenReply(accessToken=access, expiresIn=issuer.lifetime)


def utcnow() -> datetime:
    return datetime.now(UTC)
