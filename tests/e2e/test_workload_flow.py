"""One workload through every service, as a user drives it with the CLI."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from berth.cli.suite import Suite
from tests.e2e.conftest import Cli, grant

# The services a submission passes through: ownership takes part only when an action is
# requested (it asks intake then), and cluster-sync only in a cluster's reports and config.
SERVICES = {"intake", "catalog", "policy", "scheduler-adapter"}


def test_training_completes_with_the_right_job(cli: Cli, suite: Suite) -> None:
    done = cli.run(
        "submit",
        "training",
        "-p",
        "team-a",
        "--name",
        "e2e-train",
        "-i",
        "pytorch/pytorch",
        "--gpu",
        "1",
        "--label",
        "team=vision",
        "--annotation",
        "owner=ml",
        "--wait",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Completed" in done.stdout

    view = cli.json("describe", "e2e-train", "-p", "team-a")
    phases = [p["phase"] for p in view["phases"]]
    assert phases == ["Creating", "Pending", "Initializing", "Running", "Completed"], phases
    assert view["status"] == "Completed"
    assert len(view["traceId"]) == 32
    assert view["spec"]["spec"]["backoffLimit"] == 6  # policy's system default, filled in

    job = asyncio.run(_applied_job(suite.database_url, view["workloadId"]))
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["namespace"] == "berth-team-a"
    assert job["spec"]["backoffLimit"] == 6
    assert job["spec"]["ttlSecondsAfterFinished"] == 30 * 24 * 3600
    pod = job["spec"]["template"]
    assert pod["spec"]["schedulerName"] == "kai-scheduler"
    assert pod["metadata"]["labels"]["kai.scheduler/queue"] == "team-a"
    assert pod["metadata"]["labels"]["team"] == "vision"
    assert pod["metadata"]["annotations"]["owner"] == "ml"
    assert pod["metadata"]["annotations"]["berth.dev/trace-id"] == view["traceId"]
    container = pod["spec"]["containers"][0]
    assert container["image"] == "pytorch/pytorch"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


async def _applied_job(database_url: str, workload_id: str) -> dict[str, Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            manifests = (
                await conn.execute(
                    select(text("manifests"))
                    .select_from(text("scheduler_adapter.workloads"))
                    .where(text("workload_id = :w"))
                    .params(w=workload_id)
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    return next(m for m in manifests if m["kind"] == "Job")


def test_trace_links_cross_every_service(cli: Cli) -> None:
    done = cli.run(
        "submit",
        "training",
        "-p",
        "team-b",
        "--name",
        "e2e-traced",
        "-i",
        "busybox",
        "--gpu-portion",
        "0.5",
        "--wait",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    view = cli.json("describe", "e2e-traced", "-p", "team-b")
    spans = cli.json("trace", "e2e-traced", "-p", "team-b")
    by_id = {s["spanId"]: s for s in spans}
    assert {s["traceId"] for s in spans} == {view["traceId"]}
    roots = [s for s in spans if s["parentId"] is None]
    assert [r["service"] for r in roots] == ["berth-cli"]
    assert {s["service"] for s in spans} >= SERVICES
    for service in SERVICES:
        # Every service has a span whose parent was recorded by another process, and from it
        # the chain of parents leads back to the CLI's submit span: one unbroken trace.
        entry = [
            s
            for s in spans
            if s["service"] == service and by_id.get(s["parentId"], {}).get("service") != service
        ]
        assert entry, f"no span of {service} is a child of another service's span"
        span = entry[0]
        while span["parentId"] is not None:
            span = by_id[span["parentId"]]
        assert span["service"] == "berth-cli"


def test_bad_submissions_are_rejected_naming_the_field(cli: Cli) -> None:
    cases = [
        (["--name", "no-image", "-p", "team-a", "--gpu", "1"], "spec.image"),
        (
            ["--name", "neg-gpu", "-p", "team-a", "-i", "busybox", "--gpu", "-1"],
            "spec.compute.gpuDevicesRequest",
        ),
        (["--name", "no-project", "-p", "no-such-project", "-i", "busybox"], "projectId"),
    ]
    for args, field in cases:
        done = cli.run("submit", "training", *args, "--wait", "--timeout", "60")
        assert done.returncode == 1, done.stdout + done.stderr
        shown = done.stdout + done.stderr
        assert "rejected" in shown
        assert field in shown, shown
    listed = cli.json("list", "-p", "team-a")
    statuses = {w["name"]: w["status"] for w in listed}
    assert statuses["no-image"] == "rejected"
    assert statuses["neg-gpu"] == "rejected"


def test_ownership_protection_denies_non_owner_delete(cli: Cli, suite: Suite) -> None:
    # Carol may delete in team-a as alice may: only protection tells them apart.
    grant(cli, "carol@example.com", "L1 researcher", "project", "team-a")
    done = cli.run("cluster", "config", "--ownership-protection")
    assert done.returncode == 0, done.stderr
    asyncio.run(_until_protected(suite.database_url))

    done = cli.run(
        "submit",
        "workspace",
        "-p",
        "team-a",
        "--name",
        "alice-ws",
        "-i",
        "jupyter/base",
        "--gpu-portion",
        "0.25",
        "--as",
        "alice@example.com",
        "--wait",
    )
    assert done.returncode == 0, done.stdout + done.stderr

    denied = cli.run("delete", "alice-ws", "-p", "team-a", "--as", "carol@example.com")
    assert denied.returncode == 1
    assert "only its creator alice@example.com may delete it" in denied.stderr
    assert cli.json("describe", "alice-ws", "-p", "team-a")["status"] == "Running"

    deleted = cli.run("delete", "alice-ws", "-p", "team-a", "--as", "alice@example.com")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert "Deleted" in deleted.stdout
    phases = [p["phase"] for p in cli.json("describe", "alice-ws", "-p", "team-a")["phases"]]
    assert phases[-2:] == ["Deleting", "Deleted"]


async def _until_protected(database_url: str, timeout: float = 30) -> None:
    """Protection goes agent → cluster-sync → ownership; wait until ownership has it."""
    engine = create_async_engine(database_url)
    try:
        for _ in range(int(timeout * 10)):
            async with engine.connect() as conn:
                on = await conn.scalar(
                    text("SELECT protection FROM ownership.clusters WHERE cluster_id = 'local'")
                )
            if on:
                return
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    raise AssertionError("ownership never learned that protection is on")


def test_dry_run_creates_nothing(cli: Cli) -> None:
    done = cli.run(
        "submit",
        "training",
        "-p",
        "team-a",
        "--name",
        "dry",
        "--workers",
        "2",
        "--framework",
        "pytorch",
        "--gpu",
        "1",
        "-i",
        "pytorch/pytorch",
        "--dry-run",
        "-o",
        "json",
    )
    assert done.returncode == 0, done.stdout + done.stderr

    reply = json.loads(done.stdout)
    assert reply["issues"] == []
    assert reply["effectiveSpec"]["spec"]["backoffLimit"] == 6
    kinds = [m["kind"] for m in reply["manifests"]]
    assert kinds == ["PyTorchJob"]  # KAI's podgrouper makes the PodGroup
    rejected = cli.run("submit", "training", "-p", "team-a", "--name", "dry2", "--dry-run")
    assert rejected.returncode == 1
    assert "spec.image" in rejected.stdout
    names = {w["name"] for w in cli.json("list", "-p", "team-a")}
    assert "dry" not in names and "dry2" not in names
