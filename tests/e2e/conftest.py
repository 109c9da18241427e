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

from berth.cli.suite import Suite
from berth.shared.embedded import EmbeddedNats
from tests.conftest import new_database

BERTH = str(Path(sys.executable).parent / "berth")


@dataclass
class Cli:
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BERTH, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def json(self, *args: str) -> Any:
        done = self.run(*args, "-o", "json")
        assert done.returncode == 0, done.stderr + done.stdout
        return json.loads(done.stdout)


@pytest.fixture(scope="session")
def e2e_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path_factory.mktemp("e2e-nats")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def suite(
    e2e_nats: EmbeddedNats, admin_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Suite]:
    async with new_database(admin_database_url) as database_url:
        running = Suite(
            tmp_path_factory.mktemp("e2e-suite"),
            nats_url=e2e_nats.url,
            database_url=database_url,
            # 20 simulated seconds per second: a 10 s training completes in half a second.
            sim_speed=20.0,
            extra_env={"BERTH_LOG_LEVEL": "INFO"},
        )
        running.start(timeout=90)
        try:
            yield running
        finally:
            running.stop()
            for name in ("intake", "policy", "scheduler-adapter", "ownership"):
                # Shown by pytest on failure: the services' own account of what happened.
                print(f"--- {name} log tail ---\n{running.log_tail(name, 15)}")


@pytest.fixture(scope="session")
def cli(suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    env = dict(os.environ)
    env.update(
        BERTH_NATS_URL=suite.nats_url,
        BERTH_HOME=str(tmp_path_factory.mktemp("berth-home")),
        COLUMNS="200",
    )
    env.pop("BERTH_USER", None)
    return Cli(env)
