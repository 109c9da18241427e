"""How `berth submit`'s flags become a submission."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from berth.cli.submission import ComputeFlags, Submission, WorkloadFlags
from berth.contracts.workload import WorkloadSubmission

SUBMISSION: TypeAdapter[WorkloadSubmission] = TypeAdapter(WorkloadSubmission)


def _cli(kind: str = "training", **flags: Any) -> dict[str, Any]:
    compute = {k: flags.pop(k) for k in ("gpu", "gpu_portion", "cpu") if k in flags}
    workload = WorkloadFlags(image="busybox", compute=ComputeFlags(**compute), **flags)
    return Submission(kind=kind, project="team-a", name="demo", flags=workload).body()


def test_portion_implies_one_device() -> None:
    body = _cli("workspace", gpu_portion=0.5)
    assert body["spec"]["compute"] == {
        "gpuDevicesRequest": 1,
        "gpuRequestType": "portion",
        "gpuPortionRequest": 0.5,
    }
    assert SUBMISSION.validate_python(body).kind == "workspace"


def test_a_compute_resource_gets_the_same_portion_as_a_submission() -> None:
    assert ComputeFlags(gpu_portion=0.5).spec() == _cli(gpu_portion=0.5)["spec"]["compute"]


def test_workers_make_a_distributed_training() -> None:
    body = Submission(
        kind="distributed",
        project="p",
        name="d",
        flags=WorkloadFlags(image="busybox", workers=4),
        framework="pytorch",
    ).body()
    sub = SUBMISSION.validate_python(body)
    assert sub.kind == "distributed"
    assert sub.spec.numWorkers == 4  # type: ignore[union-attr]
    assert sub.spec.distributedFramework == "PyTorch"  # type: ignore[union-attr]


def test_master_flags_give_the_master_its_own_spec_from_the_workers() -> None:
    body = Submission(
        kind="distributed",
        project="p",
        name="d",
        flags=WorkloadFlags(image="img", workers=2, compute=ComputeFlags(gpu=1, cpu=4)),
        master=WorkloadFlags(args="--rank 0", compute=ComputeFlags(cpu=2)),
        framework="tf",
    ).body()
    sub = SUBMISSION.validate_python(body)
    assert body["masterSpecSameAsWorker"] is False
    assert body["masterSpec"]["image"] == "img"
    assert body["masterSpec"]["compute"] == {"gpuDevicesRequest": 1, "cpuCoreRequest": 2}
    assert sub.spec.distributedFramework == "TF"  # type: ignore[union-attr]


def test_inference_flags_make_autoscaling_and_scale_to_zero() -> None:
    flags = WorkloadFlags(
        image="vllm", serving_port=8000, max_replicas=3, metric="concurrency",
        metric_threshold=50, scale_to_zero_seconds=300,
    )  # fmt: skip
    body = Submission(kind="inference", project="p", name="llm", flags=flags).body()
    assert body["spec"]["servingPort"] == {"container": 8000}
    assert body["spec"]["autoscaling"] == {
        "minReplicas": 0,
        "maxReplicas": 3,
        "metric": "concurrency",
        "metricThreshold": 50,
        "scaleToZeroRetentionSeconds": 300,
    }
    assert SUBMISSION.validate_python(body).kind == "inference"


def test_a_credential_becomes_a_variable_by_reference() -> None:
    body = _cli(env_credential=["HF_TOKEN=hf", "KEY=s3:access"])
    assert body["spec"]["environmentVariables"] == [
        {"name": "HF_TOKEN", "credential": {"name": "hf", "key": "HF_TOKEN"}},
        {"name": "KEY", "credential": {"name": "s3", "key": "access"}},
    ]
    SUBMISSION.validate_python(body)


def test_a_volume_flag_is_a_new_claim() -> None:
    body = _cli(volumes=["/data:50G:class=fast,access=rwx,ephemeral"])
    assert body["spec"]["storage"] == {
        "pvc": [
            {
                "path": "/data",
                "existingPvc": False,
                "claimInfo": {
                    "size": "50G",
                    "storageClass": "fast",
                    "accessModes": {"readWriteMany": True},
                },
                "ephemeral": True,
            }
        ]
    }
    SUBMISSION.validate_python(body)
    with pytest.raises(ValueError, match="--volume options"):
        _cli(volumes=["/data:1G:colour=red"])


def test_a_model_from_a_catalog() -> None:
    flags = WorkloadFlags(image="vllm", model="org/model", model_credential="hf")
    body = Submission(kind="inference", project="p", name="m", flags=flags).body()
    assert body["spec"]["model"] == {
        "catalog": "huggingface",
        "modelName": "org/model",
        "credential": {"name": "hf"},
    }
    SUBMISSION.validate_python(body)


def test_key_values() -> None:
    body = _cli(env=["A=1", "B=x=y"], node_pools="a100, default")
    assert body["spec"]["environmentVariables"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "x=y"},
    ]
    assert body["spec"]["nodePools"] == ["a100", "default"]
    with pytest.raises(ValueError, match="--label takes KEY=VALUE"):
        _cli(labels=["novalue"])
