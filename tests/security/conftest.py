"""The whole suite on a nats-server running the generated accounts and permissions, as
`berth up` runs it, and connections to it as any role."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from berth.cli.embedded import EmbeddedNats
from berth.cli.nats_auth import CONFIG_FILE, credential_file, ensure_credentials
from berth.cli.suite import Suite
from berth.shared.bus import connect
from tests.conftest import new_database


@pytest.fixture(scope="session")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("security-credentials") / "nats"
    ensure_credentials(directory)
    return directory


@pytest.fixture(scope="session")
def secured_nats(
    tmp_path_factory: pytest.TempPathFactory, credentials: Path
) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(
        tmp_path_factory.mktemp("security-nats"), config=credentials / CONFIG_FILE
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def secured_suite(
    secured_nats: EmbeddedNats,
    credentials: Path,
    admin_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Suite]:
    async with new_database(admin_database_url) as database_url:
        running = Suite(
            tmp_path_factory.mktemp("security-suite"),
            nats_url=secured_nats.url,
            database_url=database_url,
            sim_speed=20.0,
            credentials_dir=credentials,
            # The workloads these tests submit are the administrator's.
            extra_env={"BERTH_ADMIN": "owner@example.com"},
        )
        running.start(timeout=90)
        try:
            yield running
        finally:
            running.stop()
            for name in ("intake", "policy", "scheduler-adapter", "ownership"):
                print(f"--- {name} log tail ---\n{running.log_tail(name, 15)}")


@dataclass
class Session:
    """A connection as one role, with the errors the server sent it (permission violations
    arrive asynchronously, as -ERR lines)."""

    role: str
    nc: Client
    errors: list[Exception] = field(default_factory=list)

    async def violation(self, text: str, timeout: float = 10.0) -> str:
        """Wait for the server's permissions violation naming ``text``; return its message."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for error in self.errors:
                # nats-py lower-cases the server's -ERR text.
                message = str(error).lower()
                if "permissions violation" in message and text.lower() in message:
                    return message
            if loop.time() > deadline:
                raise AssertionError(
                    f"no permissions violation for {text!r}; errors: {self.errors!r}"
                )
            await asyncio.sleep(0.05)


@pytest.fixture
async def as_role(secured_nats: EmbeddedNats, credentials: Path) -> AsyncIterator[Any]:
    sessions: list[Session] = []

    async def open_session(role: str) -> Session:
        errors: list[Exception] = []

        async def on_error(exc: Exception) -> None:
            errors.append(exc)

        nc = await connect(
            secured_nats.url,
            name=f"security-{role}",
            credentials=str(credential_file(credentials, role)),
            role=role,
            error_cb=on_error,
        )
        session = Session(role, nc, errors)
        sessions.append(session)
        return session

    yield open_session
    for session in sessions:
        await session.nc.close()
