"""Clusters as identities, with every service running: a submission for a cluster that never
registered is rejected naming it; ownership protection survives the agent being killed."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from berth.cli.suite import Suite
from tests.e2e.conftest import Cli


def test_a_submission_for_an_unregistered_cluster_is_rejected_naming_it(cli: Cli) -> None:
    done = cli.run("project", "create", "edge-lab", "--cluster", "edge")
    assert done.returncode == 0, done.stdout + done.stderr
    done = cli.run(
        "submit", "training", "-p", "edge-lab", "--name", "to-edge", "-i", "busybox", "--wait"
    )
    assert done.returncode != 0
    said = " ".join((done.stdout + done.stderr).split())
    assert "clusterId" in said
    assert 'cluster "edge" is not registered (known: local)' in said
    assert cli.json("describe", "to-edge", "-p", "edge-lab")["status"] == "rejected"


def test_protection_survives_the_agent_killed_and_the_cluster_services_restarted(
    cli: Cli, suite: Suite
) -> None:
    done = cli.run("cluster", "config", "--ownership-protection", "--as", "admin@example.com")
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
    denied = cli.run("delete", "kept-ws", "-p", "team-a", "--as", "bob@example.com")
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
