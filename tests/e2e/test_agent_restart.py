"""The cluster outlives its agent: a kill -9 of the scheduler-adapter while 200 workloads run
restarts none of them (the simulated cluster is a process of its own, as a real cluster is)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from berth.cli.suite import Suite
from berth.contracts.envelope import Actor, RawEvent
from berth.contracts.events import SubmissionRequestedV1
from berth.contracts.roles import UI
from berth.shared import bus
from tests.e2e.conftest import Cli

WORKLOADS = 200
PROJECT = "restart-lab"
# Long enough to outlive the restart by far, short enough to be over soon after the test
# (simulated seconds; the e2e suite runs 20x: 10 minutes).
RUNTIME = "12000"
# Phases a workload goes through before it runs: seen again after Running, it started over.
BEFORE_RUNNING = ("Creating", "Pending", "Initializing")


@pytest.mark.timeout(600)
def test_a_killed_agent_restarts_none_of_the_200_running_workloads(cli: Cli, suite: Suite) -> None:
    done = cli.run("project", "create", PROJECT, "--cluster", "local")
    assert done.returncode == 0, done.stdout + done.stderr
    names = [f"run-{i:03d}" for i in range(WORKLOADS)]
    asyncio.run(_submit(suite, names))
    started = time.monotonic()
    running = asyncio.run(_until_running(suite.database_url, WORKLOADS))
    assert running, f"not all running after {time.monotonic() - started:.0f}s"

    agent = suite.procs["scheduler-adapter"]
    agent.kill()
    agent.wait(30)
    suite.start_service("scheduler-adapter")
    suite.wait_ready(120)
    # The new agent has listed the cluster and reconciled what its database holds by the time
    # it reports; give the phases it may publish time to arrive.
    time.sleep(5)
    sample = cli.json("describe", names[0], "-p", PROJECT)
    assert sample["status"] == "Running"
    assert [p["restarts"] for p in sample["clusterPods"]] == [0]

    histories = asyncio.run(_histories(suite.database_url))
    assert len(histories) == WORKLOADS
    started_over = {
        workload: phases
        for workload, phases in histories.items()
        if any(p in BEFORE_RUNNING for p in phases[phases.index("Running") :])
    }
    assert started_over == {}
    assert all(phases[-1] == "Running" for phases in histories.values()), histories

    for status in asyncio.run(_statuses(suite.database_url)):
        assert status == "Running"


async def _submit(suite: Suite, names: list[str]) -> None:
    nc = await suite.connect(UI, name="e2e-restart")
    try:
        js = nc.jetstream()
        # The installation's administrator (alice may not submit in this new project).
        actor = Actor(email="admin@example.com")
        token = suite.token(actor.email)
        for name in names:
            workload_id = str(uuid.uuid4())
            body = {
                "kind": "training",
                "name": name,
                "projectId": PROJECT,
                "spec": {
                    "image": "busybox",
                    "annotations": [{"name": "berth.dev/sim-runtime-seconds", "value": RUNTIME}],
                },
            }
            event = RawEvent(
                source="/berth/cli",
                type=SubmissionRequestedV1.TYPE,
                version=SubmissionRequestedV1.VERSION,
                subject=workload_id,
                actor=actor,
                data={"submission": body},
            )
            await bus.publish(
                js, event, subject=SubmissionRequestedV1.nats_subject(workload_id), token=token
            )
    finally:
        await nc.close()


async def _query(database_url: str, sql: str) -> list[Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return list(await conn.execute(text(sql), {"project": PROJECT}))
    finally:
        await engine.dispose()


async def _statuses(database_url: str) -> list[str]:
    rows = await _query(
        database_url, "SELECT status FROM intake.workloads WHERE project = :project"
    )
    return [r.status for r in rows]


async def _until_running(database_url: str, count: int, within: float = 300) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        statuses = await _statuses(database_url)
        if statuses.count("Running") == count:
            return True
        await asyncio.sleep(1)
    return False


async def _histories(database_url: str) -> dict[str, list[str]]:
    rows = await _query(
        database_url,
        "SELECT h.workload_id, h.phase FROM intake.phase_history h"
        " JOIN intake.workloads w ON w.id = h.workload_id"
        " WHERE w.project = :project ORDER BY h.at, h.id",
    )
    histories: dict[str, list[str]] = {}
    for row in rows:
        histories.setdefault(row.workload_id, []).append(row.phase)
    return histories
