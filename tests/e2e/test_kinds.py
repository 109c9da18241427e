"""One workload of each kind through the running suite (simulated cluster), driven by the CLI:
each reaches its expected phase, and a distributed training too big for the inventory stays
Pending with a one-line reason."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Cli
from tests.unit.scheduler_adapter.manifest_schemas import validate

PROJECT = "team-b"


def submit(cli: Cli, kind: str, name: str, *args: str, wait: bool = True) -> None:
    extra = ["--wait", "--timeout", "60"] if wait else []
    done = cli.run("submit", kind, "-p", PROJECT, "--name", name, *args, *extra)
    assert done.returncode == 0, done.stdout + done.stderr


def describe(cli: Cli, name: str) -> Any:
    return cli.json("describe", name, "-p", PROJECT)


def phases(view: Any) -> list[str]:
    return [p["phase"] for p in view["phases"]]


@pytest.mark.parametrize(
    ("kind", "name", "args", "expected"),
    [
        ("training", "kinds-train", ("-i", "pytorch/pytorch", "--gpu", "1"), "Completed"),
        (
            "workspace",
            "kinds-ws",
            ("-i", "jupyter/base-notebook", "--gpu-portion", "0.5"),
            "Running",
        ),
        (
            "training",
            "kinds-dist",
            ("-i", "pytorch/pytorch", "--workers", "2", "--framework", "pytorch", "--gpu", "1"),
            "Completed",
        ),
        ("inference", "kinds-infer", ("-i", "vllm/vllm-openai", "--gpu", "1"), "Running"),
    ],
)
def test_each_kind_reaches_its_phase(
    cli: Cli, kind: str, name: str, args: tuple[str, ...], expected: str
) -> None:
    submit(cli, kind, name, *args)
    view = describe(cli, name)
    assert view["status"] == expected, (view["status"], view["phaseMessage"], phases(view))
    seen = phases(view)
    assert seen[0] == "Creating" and "Running" in seen, seen


def test_a_distributed_training_too_big_for_the_cluster_stays_pending_with_a_reason(
    cli: Cli,
) -> None:
    submit(
        cli,
        "training",
        "kinds-too-big",
        "-i",
        "pytorch/pytorch",
        "--workers",
        "8",
        "--framework",
        "pytorch",
        "--gpu",
        "8",
        wait=False,
    )
    deadline = time.monotonic() + 60
    view = describe(cli, "kinds-too-big")
    while view["status"] != "Pending" and time.monotonic() < deadline:
        time.sleep(0.5)
        view = describe(cli, "kinds-too-big")
    assert view["status"] == "Pending", (view["status"], phases(view))
    message = view["phaseMessage"]
    assert message and "\n" not in message, message
    # Still pending a few (simulated) scheduling passes later: all or none, never part.
    time.sleep(2)
    view = describe(cli, "kinds-too-big")
    assert view["status"] == "Pending" and view["phaseMessage"], view
    assert "Running" not in phases(view)
    shown = cli.run("describe", "kinds-too-big", "-p", PROJECT)
    assert message in shown.stdout.replace("\n", " ") or message[:40] in shown.stdout


def dry_run(cli: Cli, kind: str, name: str, *args: str) -> Any:
    return cli.run("submit", kind, "-p", PROJECT, "--name", name, *args, "--dry-run", "-o", "yaml")


def test_dry_run_prints_a_valid_pytorch_job_for_kais_podgrouper(cli: Cli) -> None:
    done = dry_run(
        cli,
        "training",
        "kinds-dry",
        "--framework",
        "pytorch",
        "--workers",
        "4",
        "--gpu",
        "2",
        "-i",
        "pytorch/pytorch",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    validate(objects)
    # KAI's podgrouper builds the gang's PodGroup from the job: berth renders the job alone.
    (job,) = objects
    assert job["kind"] == "PyTorchJob"
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert (replicas["Master"]["replicas"], replicas["Worker"]["replicas"]) == (1, 4)
    for replica in replicas.values():
        pod = replica["template"]
        assert "pod-group-name" not in pod["metadata"]["annotations"]
        assert pod["metadata"]["labels"]["kai.scheduler/queue"] == PROJECT
        assert pod["spec"]["schedulerName"] == "kai-scheduler"
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert cli.run("describe", "kinds-dry", "-p", PROJECT).returncode != 0  # nothing submitted


def test_dry_runs_follow_the_rules_of_real_clusters(cli: Cli) -> None:
    # The training-operator's webhook requires an XGBoostJob's Master.
    done = dry_run(
        cli, "training", "kinds-xgb", "--framework", "xgboost", "--workers", "2", "-i", "xgb:1"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    validate(objects)
    assert set(objects[0]["spec"]["xgbReplicaSpecs"]) == {"Master", "Worker"}
    # KAI takes gpu-fraction only below 1: all of a GPU is a whole device.
    done = dry_run(cli, "training", "kinds-portion", "--gpu-portion", "1", "-i", "img:1")
    assert done.returncode == 0, done.stdout + done.stderr
    (job,) = [o for o in yaml.safe_load_all(done.stdout) if o]
    pod = job["spec"]["template"]
    assert "gpu-fraction" not in pod["metadata"]["annotations"]
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # A StatefulSet's pods carry the name and an 11-character hash in a 63-character label.
    done = dry_run(cli, "workspace", "w" * 60, "-i", "jupyter/base-notebook")
    assert done.returncode != 0
    assert "at most 52 characters" in done.stdout + done.stderr
