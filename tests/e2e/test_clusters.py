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

    # The agent dies outright; cluster-sync and ownership restart as well. The cluster (a
    # process of its own) keeps running.
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

    # The new agent reports the cluster's setting, and it is on.
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


def test_two_clusters_each_run_their_own_and_a_lost_agent_leaves_the_other_working(
    cli: Cli, suite: Suite
) -> None:
    """A second cluster, "edge": its own simulated cluster (another inventory), agent and
    database. Its agent killed, edge turns disconnected and its workload Unknown while local
    keeps working; restarted, both come back, with nothing run twice."""
    suite.add_cluster("edge", inventory="edge")
    try:
        listed = {c["clusterId"]: c for c in cli.json("cluster", "list")}
        assert {"local", "edge"} <= set(listed)
        assert listed["edge"]["connected"] and listed["edge"]["nodePools"] == ["default"]
        assert (listed["edge"]["gpus"], listed["local"]["gpus"]) == (8, 32)
        done = cli.run("project", "create", "edge-team", "--cluster", "edge")
        assert done.returncode == 0, done.stdout + done.stderr
        for project, workload in (("edge-team", "on-edge"), ("team-a", "on-local")):
            done = cli.run(
                "submit", "training", "-p", project, "--name", workload, "-i", "busybox", "--wait"
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert "Completed" in done.stdout
        # --cluster routes one submission to another cluster than its project's.
        long_running = ("--annotation", "berth.dev/sim-runtime-seconds=36000", "--gpu", "1")
        done = cli.run(
            "training", "submit", "long-edge", "-p", "team-a", "--cluster", "edge", "-i",
            "busybox", *long_running, "--wait", "--timeout", "3",
        )  # fmt: skip
        assert "Running" in done.stdout, done.stdout + done.stderr
        ids = {
            w: cli.json("describe", w, "-p", p)["workloadId"]
            for p, w in (("edge-team", "on-edge"), ("team-a", "on-local"), ("team-a", "long-edge"))
        }
        local = asyncio.run(_applied(suite.agent_database_url("local")))
        edge = asyncio.run(_applied(suite.agent_database_url("edge")))
        assert ids["on-local"] in local and ids["on-local"] not in edge
        assert ids["on-edge"] in edge and ids["on-edge"] not in local
        assert ids["long-edge"] in edge
        described = cli.json("describe", "long-edge", "-p", "team-a")
        (pod,) = described["clusterPods"]
        assert (pod["phase"], pod["nodePool"], pod["gpus"], pod["restarts"]) == (
            "Running",
            "default",
            "1",
            0,
        )

        agent = suite.procs["scheduler-adapter-edge"]
        agent.kill()  # kill -9: no goodbye
        agent.wait(30)
        state = _until_cli(cli, lambda: not _cluster(cli, "edge")["connected"], within=45)
        assert state, "edge never turned disconnected"
        unknown = cli.json("describe", "long-edge", "-p", "team-a")
        assert unknown["status"] == "Unknown"
        assert "cluster edge is disconnected" in unknown["phaseMessage"]
        assert "last known phase: Running" in unknown["phaseMessage"]
        # The other cluster is unaffected.
        assert _cluster(cli, "local")["connected"]
        done = cli.run(
            "submit", "training", "-p", "team-a", "--name", "while-edge-is-away", "-i", "busybox",
            "--wait",
        )  # fmt: skip
        assert done.returncode == 0 and "Completed" in done.stdout, done.stdout + done.stderr

        suite.start_service("scheduler-adapter-edge")
        suite.wait_ready(90)
        assert _until_cli(cli, lambda: _cluster(cli, "edge")["connected"], within=45)
        back = cli.json("describe", "long-edge", "-p", "team-a")
        assert back["status"] == "Running"
        # The cluster kept it running while its agent was away: one pod, never restarted, and
        # a phase history that went through Running once.
        (pod,) = back["clusterPods"]
        assert (pod["name"], pod["restarts"]) == (described["clusterPods"][0]["name"], 0)
        phases = [p["phase"] for p in back["phases"]]
        assert phases.count("Creating") == 1 and phases[-1] == "Running", phases
        assert phases[phases.index("Running") :].count("Pending") == 0, phases
        done = cli.run("delete", "long-edge", "-p", "team-a")
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        suite.remove_cluster("edge")
        asyncio.run(_drop(suite.agent_database_url("edge")))


def _cluster(cli: Cli, cluster: str) -> dict[str, Any]:
    found: dict[str, Any] = {c["clusterId"]: c for c in cli.json("cluster", "list")}[cluster]
    return found


def _until_cli(cli: Cli, check: Any, *, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(1)
    return bool(check())


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
