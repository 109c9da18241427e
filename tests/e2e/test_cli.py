"""The CLI's answers against the running suite: per-kind submit commands render what their
flags say, submissions without --wait still report a rejection, and lists span projects."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import yaml

from tests.e2e.conftest import BERTH, Cli


def objects(cli: Cli, *args: str) -> list[dict[str, Any]]:
    done = cli.run(*args, "--dry-run", "-o", "yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    return [o for o in yaml.safe_load_all(done.stdout) if o]


def test_a_distributed_training_renders_a_master_and_its_workers(cli: Cli) -> None:
    found = objects(
        cli,
        *("training", "pytorch", "submit", "cli-dist", "-p", "team-a", "-i", "pytorch/pytorch"),
        *("--workers", "2", "--gpu", "1", "--master-args", "--rank 0"),
    )
    [job] = [o for o in found if o["kind"] == "PyTorchJob"]
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1
    assert replicas["Worker"]["replicas"] == 2


def test_an_inference_renders_its_autoscaling(cli: Cli) -> None:
    found = objects(
        cli,
        *("inference", "submit", "cli-llm", "-p", "team-a", "-i", "vllm/vllm-openai"),
        *("--serving-port", "8000", "--min-replicas", "1", "--max-replicas", "3"),
        *("--metric", "concurrency", "--metric-threshold", "50"),
    )
    kinds = {o["kind"] for o in found}
    assert "Deployment" in kinds or "Service" in kinds
    [hpa] = [o for o in found if o["kind"] == "HorizontalPodAutoscaler"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)


def test_a_submission_to_an_unknown_project_fails_and_suggests_real_ones(cli: Cli) -> None:
    done = cli.run("training", "submit", "cli-x", "-p", "team-z", "-i", "busybox")
    assert done.returncode == 1
    said = " ".join((done.stdout + done.stderr).split())
    assert 'project "team-z" does not exist' in said
    assert '"team-a"' in said and '"team-b"' in said


def test_a_name_prefix_prints_the_name_given_and_lists_span_projects(cli: Cli) -> None:
    done = cli.run("training", "submit", "cli-pre", "-p", "team-b", "-i", "busybox")
    assert done.returncode == 0, done.stdout + done.stderr
    named = cli.run(
        "training",
        "submit",
        "cli-pre",
        "-p",
        "team-b",
        "-i",
        "busybox",
        "--name-prefix",
        "-o",
        "name",
    )
    assert named.returncode == 0, named.stdout + named.stderr
    given = named.stdout.strip()
    assert given.startswith("cli-pre-") and given != "cli-pre"

    duplicate = cli.run("training", "submit", "cli-pre", "-p", "team-b", "-i", "busybox")
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr

    listed = yaml.safe_load(cli.run("list", "-A", "-o", "yaml").stdout)
    assert {("team-b", given), ("team-b", "cli-pre")} <= {(w["project"], w["name"]) for w in listed}
    rejected = json.loads(cli.run("list", "-A", "--status", "rejected", "-o", "json").stdout)
    assert rejected and all(w["status"] == "rejected" for w in rejected)


def test_describe_watch_follows_a_workload_to_its_end(cli: Cli) -> None:
    # 400 simulated seconds (20 s at the suite's speed): the watch starts while it runs,
    # shows its phases as they come, and ends with it.
    done = cli.run(
        *("training", "submit", "cli-watched", "-p", "team-a", "-i", "busybox"),
        *("--annotation", "berth.dev/sim-runtime-seconds=400"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    watched = subprocess.run(
        [BERTH, "describe", "cli-watched", "-p", "team-a", "-w"],
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert watched.returncode == 0, watched.stdout + watched.stderr
    lines = watched.stdout.splitlines()
    assert any("Completed" in line for line in lines[-3:]), watched.stdout
