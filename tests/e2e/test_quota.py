"""Over-quota workloads that do not allow it are held Pending, then admitted when room frees."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.conftest import Cli

PROJECT = "quota-lab"


def _status(cli: Cli, name: str) -> dict[str, Any]:
    view: dict[str, Any] = cli.json("describe", name, "-p", PROJECT)
    return view


def _until(cli: Cli, name: str, status: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = _status(cli, name)
        if view["status"] == status:
            return view
        assert time.monotonic() < deadline, f"{name} is {view['status']}, not {status}"
        time.sleep(0.3)


def test_over_quota_is_held_then_admitted(cli: Cli) -> None:
    created = cli.run(
        "project",
        "create",
        PROJECT,
        "--department",
        "research",
        "--node-pools",
        "default",
        "--quota",
        "default:gpu=2,cpu=32,memory=128,weight=Medium",
    )
    assert created.returncode == 0, created.stdout + created.stderr

    first = cli.run(
        "submit",
        "workspace",
        "-p",
        PROJECT,
        "--name",
        "quota-first",
        "-i",
        "jupyter/base",
        "--gpu",
        "2",
        "--wait",
        "--timeout",
        "60",
    )
    assert first.returncode == 0, first.stdout + first.stderr

    # The project's 2 deserved GPUs are taken: the next one waits, and says why.
    second = cli.run(
        "submit",
        "workspace",
        "-p",
        PROJECT,
        "--name",
        "quota-second",
        "-i",
        "jupyter/base",
        "--gpu",
        "1",
    )
    assert second.returncode == 0, second.stderr
    held = _until(cli, "quota-second", "Pending")
    assert "over quota" in held["phaseMessage"]
    assert "uses 2 of its deserved 2" in held["phaseMessage"]

    # Allowing over-quota runs on idle capacity at once.
    over = cli.run(
        "submit",
        "workspace",
        "-p",
        PROJECT,
        "--name",
        "quota-over",
        "-i",
        "jupyter/base",
        "--gpu",
        "1",
        "--allow-over-quota",
        "--wait",
        "--timeout",
        "60",
    )
    assert over.returncode == 0, over.stdout + over.stderr

    # When the first one goes, the held one is admitted and runs.
    deleted = cli.run("delete", "quota-first", "-p", PROJECT)
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    admitted = _until(cli, "quota-second", "Running")
    phases = [p["phase"] for p in admitted["phases"]]
    assert phases[0] == "Pending" and phases[-1] == "Running", phases
