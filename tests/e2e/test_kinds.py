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


def test_dry_run_prints_a_valid_gang_scheduled_pytorch_job(cli: Cli) -> None:
    done = cli.run(
        "submit",
        "training",
        "-p",
        PROJECT,
        "--name",
        "kinds-dry",
        "--framework",
        "pytorch",
        "--workers",
        "4",
        "--gpu",
        "2",
        "-i",
        "pytorch/pytorch",
        "--dry-run",
        "-o",
        "yaml",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    validate(objects)
    group, job = objects[0], objects[1]
    assert job["kind"] == "PyTorchJob" and group["kind"] == "PodGroup"
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert (replicas["Master"]["replicas"], replicas["Worker"]["replicas"]) == (1, 4)
    assert group["spec"]["minMember"] == 5
    for replica in replicas.values():
        pod = replica["template"]
        assert pod["metadata"]["annotations"]["pod-group-name"] == group["metadata"]["name"]
        assert pod["metadata"]["labels"]["kai.scheduler/queue"] == PROJECT
        assert pod["spec"]["schedulerName"] == "kai-scheduler"
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert cli.run("describe", "kinds-dry", "-p", PROJECT).returncode != 0  # nothing submitted
