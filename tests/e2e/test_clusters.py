"""Clusters as identities, with every service running: a submission for a cluster that never
registered is rejected naming it; ownership protection survives the agent being killed."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from berth.cli.suite import Suite
from tests.e2e.conftest import Cli, grant


def test_a_submission_for_an_unregistered_cluster_is_rejected_naming_it(cli: Cli) -> None:
    done = cli.run("project", "create", "far-lab", "--cluster", "far")
    assert done.returncode == 0, done.stdout + done.stderr
    done = cli.run(
        "submit", "training", "-p", "far-lab", "--name", "to-far", "-i", "busybox", "--wait"
    )
    assert done.returncode != 0
    said = " ".join((done.stdout + done.stderr).split())
    assert "clusterId" in said
    # The known clusters: local, and edge should the test that adds it have run before.
    assert re.search(r'cluster "far" is not registered \(known: (edge, )?local\)', said), said
    assert cli.json("describe", "to-far", "-p", "far-lab")["status"] == "rejected"


def test_protection_survives_the_agent_killed_and_the_cluster_services_restarted(
    cli: Cli, suite: Suite
) -> None:
    # Carol may delete in team-a as alice may: only protection tells them apart.
    grant(cli, "carol@example.com", "L1 researcher", "project", "team-a")
    done = cli.run("cluster", "config", "--ownership-protection")
    assert done.returncode == 0, done.stderr
    asyncio.run(_until(suite.database_url, _reported_protection))
    done = cli.run(
        "submit",
        "workspace",
        "-p",
        "team-a",
        "--name",
        "kept-ws",
        "-i",
        "jupyter/base",
        "--gpu-portion",
        "0.25",
        "--as",
        "alice@example.com",
        "--wait",
    )
    assert done.returncode == 0, done.stdout + done.stderr

    # The agent dies outright; its simulated cluster, which kept the setting, dies with it.
    # cluster-sync and ownership restart as well.
    restarted = datetime.now(UTC)
    agent = suite.procs["scheduler-adapter"]
    agent.kill()
    agent.wait(30)
    suite.stop_service("cluster-sync")
    suite.stop_service("ownership")
    for name in ("cluster-sync", "ownership", "scheduler-adapter"):
        suite.start_service(name)
    suite.wait_ready(120)

    # Protected at once: the desired setting counts while the agent has not re-applied it.
    denied = cli.run("delete", "kept-ws", "-p", "team-a", "--as", "carol@example.com")
    assert denied.returncode == 1, denied.stdout + denied.stderr
    assert "only its creator alice@example.com may delete it" in denied.stderr

    # The new agent's cluster started without it; cluster-sync sent it down again on the
    # agent's first report, and the cluster reports it on.
    asyncio.run(_until(suite.database_url, _cluster_record, after=restarted))

    deleted = cli.run("delete", "kept-ws", "-p", "team-a", "--as", "alice@example.com")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr


async def _reported_protection(conn: Any, after: datetime | None) -> Any:
    return await conn.scalar(
        text("SELECT protection FROM ownership.clusters WHERE cluster_id = 'local'")
    )


async def _cluster_record(conn: Any, after: datetime | None) -> Any:
    row = (
        await conn.execute(
            text(
                "SELECT (config->>'workloadOwnershipProtection')::boolean AS protection,"
                " last_report_at FROM cluster_sync.clusters WHERE cluster_id = 'local'"
            )
        )
    ).first()
    # Reported by the new agent (after the restart), and on.
    return row is not None and (after is None or row.last_report_at > after) and row.protection


async def _until(database_url: str, read: Any, *, after: datetime | None = None) -> None:
    """Poll ``read`` until it returns something true."""
    engine = create_async_engine(database_url)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                value = await read(conn, after)
            if value:
                return
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()
    raise AssertionError(f"{read.__name__} not true within 60 s")


def test_a_second_cluster_runs_its_own_workloads_and_only_those(cli: Cli, suite: Suite) -> None:
    """One more agent, for cluster "edge", with its simulated cluster and database of its own."""
    suite.add_cluster("edge")
    try:
        listed = {c["clusterId"]: c for c in cli.json("cluster", "list")}
        assert {"local", "edge"} <= set(listed)
        assert listed["edge"]["backend"] == "simulated" and listed["edge"]["gpus"] > 0
        done = cli.run("project", "create", "edge-team", "--cluster", "edge")
        assert done.returncode == 0, done.stdout + done.stderr
        for project, workload in (("edge-team", "on-edge"), ("team-a", "on-local")):
            done = cli.run(
                "submit", "training", "-p", project, "--name", workload, "-i", "busybox", "--wait"
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert "Completed" in done.stdout
        ids = {
            w: cli.json("describe", w, "-p", p)["workloadId"]
            for p, w in (("edge-team", "on-edge"), ("team-a", "on-local"))
        }
        local = asyncio.run(_applied(suite.agent_database_url("local")))
        edge = asyncio.run(_applied(suite.agent_database_url("edge")))
        assert ids["on-local"] in local and ids["on-local"] not in edge
        assert ids["on-edge"] in edge and ids["on-edge"] not in local
    finally:
        suite.remove_cluster("edge")
        asyncio.run(_drop(suite.agent_database_url("edge")))


async def _drop(database_url: str) -> None:
    url = make_url(database_url)
    engine = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    finally:
        await engine.dispose()


async def _applied(database_url: str) -> set[str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT workload_id FROM scheduler_adapter.workloads"))
            return set(rows.scalars())
    finally:
        await engine.dispose()
