"""How `berth submit`'s flags become a submission."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from berth.cli import submission
from berth.contracts.workload import WorkloadSubmission

SUBMISSION: TypeAdapter[WorkloadSubmission] = TypeAdapter(WorkloadSubmission)


def _cli(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "project": "team-a",
        "name": "demo",
        "name_prefix": False,
        "image": "busybox",
        "gpu": None,
        "gpu_portion": None,
        "cpu": None,
        "memory": None,
        "command": None,
        "args": None,
        "env": None,
        "labels": None,
        "annotations": None,
        "node_pools": None,
        "backoff_limit": None,
        "auto_delete_seconds": None,
        "allow_over_quota": None,
    }
    base.update(over)
    return base


def test_portion_implies_one_device() -> None:
    body = submission.build(kind="workspace", **_cli(gpu_portion=0.5))  # type: ignore[arg-type]
    assert body["spec"]["compute"] == {
        "gpuDevicesRequest": 1,
        "gpuRequestType": "portion",
        "gpuPortionRequest": 0.5,
    }
    assert SUBMISSION.validate_python(body).kind == "workspace"


def test_workers_make_a_distributed_training() -> None:
    body = submission.build(kind="training", workers=4, framework="pytorch", **_cli())  # type: ignore[arg-type]
    sub = SUBMISSION.validate_python(body)
    assert sub.kind == "distributed"
    assert sub.spec.numWorkers == 4  # type: ignore[union-attr]
    assert sub.spec.distributedFramework == "PyTorch"  # type: ignore[union-attr]


def test_key_values() -> None:
    body = submission.build(
        kind="training", **_cli(env=["A=1", "B=x=y"], node_pools="a100, default")
    )  # type: ignore[arg-type]
    assert body["spec"]["environmentVariables"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "x=y"},
    ]
    assert body["spec"]["nodePools"] == ["a100", "default"]
    with pytest.raises(ValueError, match="--label takes KEY=VALUE"):
        submission.build(kind="training", **_cli(labels=["novalue"]))  # type: ignore[arg-type]
