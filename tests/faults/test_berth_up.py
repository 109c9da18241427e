"""`berth up` as a user runs it, in a checkout of its own: a second one is refused without
touching the first; nats-server is restarted after a crash; and a kill -9 of `berth up` leaves
nothing running, not even the embedded PostgreSQL (which pg_ctl detaches)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from berth.cli.supervision import LOCK_FILE, postmaster_pid

pytestmark = pytest.mark.faults

BERTH = str(Path(sys.executable).parent / "berth")


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}")
        time.sleep(0.1)


@pytest.fixture
def checkout() -> Iterator[Path]:
    # A short path: PostgreSQL's unix socket lives in the state directory.
    directory = Path(tempfile.mkdtemp(prefix="berth-up-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_one_berth_up_per_checkout_supervised_and_nothing_left_after_a_kill_9(
    checkout: Path,
) -> None:
    env = dict(os.environ, BERTH_HOME=str(checkout / "home"), COLUMNS="200")
    for name in ("BERTH_NATS_URL", "BERTH_DATABASE_URL", "BERTH_NATS_CREDENTIALS"):
        env.pop(name, None)
    log = checkout / "up.log"
    with log.open("wb") as out:
        first = subprocess.Popen(
            [BERTH, "up"],
            cwd=checkout,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: "berth is up." in log.read_text() or first.poll() is not None,
            180,
            "berth up ready",
        )
        assert first.poll() is None, log.read_text()
        holder = json.loads((checkout / ".berth" / LOCK_FILE).read_text())
        endpoints = checkout / "home" / "endpoints.json"
        recorded = endpoints.read_bytes()

        second = subprocess.run(
            [BERTH, "up"], cwd=checkout, env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        assert second.stdout == ""
        assert second.stderr.splitlines() == [
            f"berth is already running in this checkout (pid {first.pid}, {holder['nats_url']})"
        ]
        assert endpoints.read_bytes() == recorded
        assert first.poll() is None

        def nats_server() -> psutil.Process | None:
            found = [p for p in psutil.Process(first.pid).children() if p.name() == "nats-server"]
            return found[0] if found else None

        crashed = nats_server()
        assert crashed is not None
        crashed.kill()
        wait_for(
            lambda: (n := nats_server()) is not None and n.pid != crashed.pid,
            30,
            "nats-server restarted",
        )
        # At once after a good run; a second later when it had run for less than the
        # supervisor's minimum uptime (a fast machine is up within it), as for a crash at start.
        said = log.read_text()
        assert re.search(r"nats-server exited with -9; restarting (now|in 1s)", said), said[-3000:]
        # The services reconnect to the new server by themselves (their clients retry every
        # few seconds): the suite is whole again without anybody's help.
        statuses: list[subprocess.CompletedProcess[str]] = []

        def healthy() -> bool:
            statuses.append(
                subprocess.run(
                    [BERTH, "status"], env=env, capture_output=True, text=True, timeout=60
                )
            )
            return statuses[-1].returncode == 0

        try:
            wait_for(healthy, 60, "every service healthy after nats-server's restart")
        except AssertionError:
            raise AssertionError(statuses[-1].stdout + statuses[-1].stderr) from None

        postgres = postmaster_pid(checkout / ".berth" / "pg")
        assert postgres is not None
        left = [p.pid for p in psutil.Process(first.pid).children(recursive=True)]
        first.send_signal(signal.SIGKILL)
        first.wait()

        def all_gone() -> bool:
            return not any(psutil.pid_exists(p) for p in [postgres, *left])

        wait_for(all_gone, 30, "PostgreSQL, nats-server, the services and the watchdog gone")
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGINT)
            first.wait(60)
