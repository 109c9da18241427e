"""The whole suite as separate processes, on a nats-server and a database of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from berth.cli.embedded import EmbeddedNats
from berth.cli.nats_auth import CONFIG_FILE, ensure_credentials
from berth.cli.suite import Suite
from berth.contracts.roles import UI
from tests.conftest import new_database

BERTH = str(Path(sys.executable).parent / "berth")


@dataclass
class Cli:
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BERTH, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def as_user(self, email: str) -> Cli:
        """The CLI of another person: a home of its own, logged in as ``email`` from the
        suite's development issuer."""
        home = Path(self.env["BERTH_HOME"]).with_name(f"home-{email}")
        other = Cli({**self.env, "BERTH_HOME": str(home)})
        if not home.exists():
            home.mkdir(parents=True)
            done = other.run("login", "--user", email)
            assert done.returncode == 0, done.stderr
        return other

    def json(self, *args: str) -> Any:
        done = self.run(*args, "-o", "json")
        assert done.returncode == 0, done.stderr + done.stdout
        return json.loads(done.stdout)


@pytest.fixture(scope="session")
def e2e_credentials(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One credential per role and the generated server configuration, as `berth up` makes."""
    directory = tmp_path_factory.mktemp("e2e-credentials")
    # The permissions name every cluster whose agent may join, as a deployment's nats-config
    # does: the cluster tests add an agent for "edge" to the running suite.
    ensure_credentials(directory, ["local", "edge"])
    return directory


@pytest.fixture(scope="session")
def e2e_nats(
    tmp_path_factory: pytest.TempPathFactory, e2e_credentials: Path
) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(
        tmp_path_factory.mktemp("e2e-nats"), config=e2e_credentials / CONFIG_FILE
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def suite(
    e2e_nats: EmbeddedNats,
    e2e_credentials: Path,
    admin_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Suite]:
    async with new_database(admin_database_url) as database_url:
        running = Suite(
            tmp_path_factory.mktemp("e2e-suite"),
            nats_url=e2e_nats.url,
            database_url=database_url,
            # 20 simulated seconds per second: a 10 s training completes in half a second.
            sim_speed=20.0,
            extra_env={"BERTH_LOG_LEVEL": "INFO"},
            credentials_dir=e2e_credentials,
        )
        running.start(timeout=90)
        try:
            yield running
        finally:
            running.stop()
            for name in ("intake", "policy", "scheduler-adapter", "ownership"):
                # Shown by pytest on failure: the services' own account of what happened.
                print(f"--- {name} log tail ---\n{running.log_tail(name, 15)}")


def grant(cli: Cli, subject: str, role: str, scope: str = "tenant", name: str = "") -> None:
    """An access rule, as the administrator (the suite's default user) grants it; granting one
    that exists already is fine (the suite is shared by the session's tests)."""
    args = ["access-rule", "create", "--subject", subject, "--role", role, "--scope", scope]
    done = cli.run(*args, *(["--scope-name", name] if name else []))
    assert done.returncode == 0 or "already" in done.stderr, done.stdout + done.stderr


@pytest.fixture(scope="session")
def cli(suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    env = dict(os.environ)
    env.update(
        BERTH_NATS_URL=suite.nats_url,
        # The CLI is a UI: it connects with the ui credential.
        BERTH_NATS_CREDENTIALS=str(suite.credentials(UI)),
        BERTH_HOME=str(tmp_path_factory.mktemp("berth-home")),
        COLUMNS="200",
    )
    env.pop("BERTH_TOKEN", None)
    cli = Cli(env)
    # As a user of `berth up` would: log in (from the session's development issuer) as each
    # user the tests act as with --as; the last one is the current identity.
    for user in (*USERS, CURRENT_USER):
        done = cli.run("login", "--user", user)
        assert done.returncode == 0, done.stderr
    return cli


USERS = ("alice@example.com", "bob@example.com", "carol@example.com", "tester@example.com")
# The installation's administrator (berth up's default), the identity the tests act as.
CURRENT_USER = "admin@example.com"
