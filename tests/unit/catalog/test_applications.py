"""The application handlers over an in-memory store: a secret is hashed, shown once, checked
in constant shape, and exchanged for a token of the application issuer."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from berth.catalog import applications
from berth.catalog.access import new_rule
from berth.catalog.applications import Application, ApplicationStore, Stores
from berth.contracts.access import ROLES, AccessRule
from berth.contracts.applications import (
    ApplicationCreateRequest,
    ApplicationDeleteRequest,
    ApplicationListRequest,
    ApplicationTokenRequest,
)
from berth.contracts.envelope import Actor
from berth.shared.identity import (
    APPLICATION,
    KeySet,
    SigningKey,
    TrustedIssuer,
    Verifier,
    jwks_file,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ADMIN = Actor(email="admin@example.com")
BOB = Actor(email="bob@example.com")
ROLE = {r.name: r for r in ROLES}
RULES = [
    new_rule(
        subject="admin@example.com",
        subject_type="user",
        role=ROLE["System administrator"],
        scope=("tenant", ""),
        cluster_id=None,
        by="bootstrap",
        at=NOW,
    ),
    new_rule(
        subject="bob@example.com",
        subject_type="user",
        role=ROLE["L1 researcher"],
        scope=("project", "team-b"),
        cluster_id="local",
        by="bootstrap",
        at=NOW,
    ),
]


async def rules() -> list[AccessRule]:
    return RULES


class MemoryApplicationStore:
    """The store in memory, for unit tests of the handlers."""

    def __init__(self) -> None:
        self.rows: dict[str, Application] = {}

    async def insert(self, application: Application) -> bool:
        if application.name in self.rows:
            return False
        self.rows[application.name] = application
        return True

    async def get(self, name: str) -> Application | None:
        return self.rows.get(name)

    async def all(self) -> list[Application]:
        return [self.rows[n] for n in sorted(self.rows)]

    async def delete(self, name: str) -> Application | None:
        return self.rows.pop(name, None)

    async def logged_in(self, name: str, at: datetime) -> None:
        if name in self.rows:
            self.rows[name] = replace(self.rows[name], last_login=at)

    def stores(self) -> Stores:
        @asynccontextmanager
        async def store() -> AsyncIterator[ApplicationStore]:
            yield self

        return store


@pytest.fixture
def store() -> MemoryApplicationStore:
    return MemoryApplicationStore()


@pytest.fixture
def issuer(tmp_path: Path) -> applications.Issuer:
    key = SigningKey.ensure(tmp_path / "apps.key")
    return applications.Issuer(
        key=lambda: key, issuer="berth-applications", audience="berth", lifetime=600
    )


async def make(store: MemoryApplicationStore, name: str = "ci") -> str:
    reply = await applications.create(
        ApplicationCreateRequest(name=name, actor=ADMIN),
        stores=store.stores(),
        rules=rules,
        now=lambda: NOW,
    )
    assert reply.clientSecret is not None
    return reply.clientSecret


async def test_the_secret_is_kept_only_as_a_hash(store: MemoryApplicationStore) -> None:
    secret = await make(store)
    row = store.rows["ci"]
    assert secret not in row.secret_hash and row.secret_hash.startswith("$argon2id$")
    assert applications.secret_matches(row.secret_hash, secret)
    assert not applications.secret_matches(row.secret_hash, secret + "x")
    assert row.created_by == "admin@example.com"


async def test_names_are_unique(store: MemoryApplicationStore) -> None:
    await make(store)
    reply = await applications.create(
        ApplicationCreateRequest(name="ci", actor=ADMIN),
        stores=store.stores(),
        rules=rules,
        now=lambda: NOW,
    )
    assert reply.error == 'application "ci" already exists' and reply.clientSecret is None


async def test_the_exchange_gives_a_token_of_the_application(
    store: MemoryApplicationStore, issuer: applications.Issuer, tmp_path: Path
) -> None:
    secret = await make(store)
    reply = await applications.token(
        ApplicationTokenRequest(clientId="ci", clientSecret=secret),
        stores=store.stores(),
        issuer=issuer,
        now=lambda: datetime.now(UTC),
    )
    assert reply.accessToken and reply.expiresIn == 600
    verifier = Verifier(
        [
            TrustedIssuer(
                "berth-applications", KeySet(path=jwks_file(tmp_path / "apps.key")), APPLICATION
            )
        ],
        "berth",
    )
    actor = await verifier.verify(reply.accessToken)
    assert (actor.subject, actor.kind) == ("ci", "application")
    assert store.rows["ci"].last_login is not None


async def test_a_wrong_secret_or_unknown_id_get_the_same_answer(
    store: MemoryApplicationStore, issuer: applications.Issuer
) -> None:
    secret = await make(store)

    async def exchange(client_id: str, secret_: str) -> str | None:
        reply = await applications.token(
            ApplicationTokenRequest(clientId=client_id, clientSecret=secret_),
            stores=store.stores(),
            issuer=issuer,
            now=lambda: NOW,
        )
        assert reply.accessToken is None
        return reply.error

    assert await exchange("ci", "wrong") == await exchange("nobody", secret)
    store.rows["ci"] = replace(store.rows["ci"], enabled=False)
    assert await exchange("ci", secret) == 'application "ci" is disabled'


async def test_list_and_delete(store: MemoryApplicationStore) -> None:
    await make(store, "b-app")
    await make(store, "a-app")
    listed = await applications.list_(
        ApplicationListRequest(actor=ADMIN), stores=store.stores(), rules=rules
    )
    assert [a.name for a in listed.applications] == ["a-app", "b-app"]
    gone = await applications.delete_(
        ApplicationDeleteRequest(name="a-app", actor=ADMIN), stores=store.stores(), rules=rules
    )
    assert gone.deleted is not None and "a-app" not in store.rows
    missing = await applications.delete_(
        ApplicationDeleteRequest(name="a-app", actor=ADMIN), stores=store.stores(), rules=rules
    )
    assert missing.error == 'no application "a-app"'


async def test_only_who_may_manage_applications_in_the_tenant_does(
    store: MemoryApplicationStore,
) -> None:
    """Otherwise anyone could delete a CI pipeline's application, or recreate a deleted one
    under its old name and inherit the access rules that still name it."""
    await make(store, "ci")
    created = await applications.create(
        ApplicationCreateRequest(name="mine", actor=BOB),
        stores=store.stores(),
        rules=rules,
        now=lambda: NOW,
    )
    assert created.clientSecret is None and created.error == (
        "forbidden: bob@example.com may not create applications in the tenant "
        "(no access rule grants applications.create there)"
    )
    listed = await applications.list_(
        ApplicationListRequest(actor=BOB), stores=store.stores(), rules=rules
    )
    assert listed.applications == [] and "applications.read" in (listed.error or "")
    deleted = await applications.delete_(
        ApplicationDeleteRequest(name="ci", actor=BOB), stores=store.stores(), rules=rules
    )
    assert deleted.deleted is None and "applications.delete" in (deleted.error or "")
    anonymous = await applications.delete_(
        ApplicationDeleteRequest(name="ci"), stores=store.stores(), rules=rules
    )
    assert "anonymous" in (anonymous.error or "")
    assert set(store.rows) == {"ci"}


def test_the_decoy_hash_is_made_once_when_first_needed_not_at_import() -> None:
    # A start of the catalog does not wait for an Argon2id hash (its bootstrap makes the decoy
    # in a thread once it has started).
    check = "import berth.catalog.applications as a; assert a.decoy.cache_info().currsize == 0"
    subprocess.run([sys.executable, "-c", check], check=True)
    assert applications.decoy() is applications.decoy()
    assert not applications.secret_matches(applications.decoy(), "")
