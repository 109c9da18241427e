"""The pure rules of each service: validation, defaults, ownership, config changes, CLI flags."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from berth.cli.submission import ComputeFlags, Submission, WorkloadFlags
from berth.cluster_sync.handlers import changed_keys
from berth.contracts.events import Issue
from berth.contracts.workload import WorkloadSubmission
from berth.intake import validation
from berth.ownership.rules import decide
from berth.policy.evaluation import evaluate

SUBMISSION: TypeAdapter[WorkloadSubmission] = TypeAdapter(WorkloadSubmission)


def _cli(kind: str = "training", **flags: Any) -> dict[str, Any]:
    compute = {k: flags.pop(k) for k in ("gpu", "gpu_portion", "cpu") if k in flags}
    workload = WorkloadFlags(image="busybox", compute=ComputeFlags(**compute), **flags)
    return Submission(kind=kind, project="team-a", name="demo", flags=workload).body()


class TestIntakeValidation:
    def test_valid_submission_parses(self) -> None:
        body = _cli(gpu=2)
        parsed = validation.parse("w-1", {"submission": body})
        assert not isinstance(parsed, list)
        assert parsed.submission.spec.compute is not None
        assert parsed.submission.spec.compute.gpuDevicesRequest == 2

    def test_every_bad_field_is_named_without_the_union_tag(self) -> None:
        body = _cli(gpu=-1, backoff_limit=101)
        body["spec"]["colour"] = "blue"
        issues = validation.parse("w-1", {"submission": body})
        assert isinstance(issues, list)
        fields = {i.field for i in issues}
        assert fields == {"spec.compute.gpuDevicesRequest", "spec.backoffLimit", "spec.colour"}
        assert Issue(field="spec.colour", details="unknown field") in issues

    def test_unknown_kind_and_bad_workload_id(self) -> None:
        body = _cli()
        body["kind"] = "batch"
        issues = validation.parse("has.dots", {"submission": body})
        assert isinstance(issues, list)
        assert [i.field for i in issues] == ["subject", "kind"]
        assert "workspace, training, distributed, inference" in issues[1].details

    def test_describe_raw_is_best_effort(self) -> None:
        assert validation.describe_raw({"submission": {"name": "x", "projectId": 3}}) == (
            "x",
            None,
            None,
        )
        assert validation.describe_raw({"submission": "nonsense"}) == (None, None, None)


class TestPolicyDefaults:
    def test_training_gets_system_defaults(self) -> None:
        sub = SUBMISSION.validate_python(
            {"kind": "training", "name": "t", "projectId": "p", "spec": {"image": "i"}}
        )
        effective, issues = evaluate(sub)
        assert issues == []
        assert effective.spec.backoffLimit == 6
        assert effective.spec.autoDeletionTimeAfterCompletionSeconds == 30 * 24 * 3600

    def test_submitted_values_win_over_defaults(self) -> None:
        sub = SUBMISSION.validate_python(
            {
                "kind": "training",
                "name": "t",
                "projectId": "p",
                "spec": {
                    "image": "i",
                    "backoffLimit": 0,
                    "autoDeletionTimeAfterCompletionSeconds": 0,
                },
            }
        )
        effective, _ = evaluate(sub)
        assert effective.spec.backoffLimit == 0
        assert effective.spec.autoDeletionTimeAfterCompletionSeconds == 0

    def test_missing_image_is_a_compliance_issue(self) -> None:
        sub = SUBMISSION.validate_python(
            {"kind": "workspace", "name": "w", "projectId": "p", "spec": {}}
        )
        _, issues = evaluate(sub)
        assert [i.field for i in issues] == ["spec.image"]

    def test_inference_gets_no_backoff(self) -> None:
        sub = SUBMISSION.validate_python(
            {"kind": "inference", "name": "s", "projectId": "p", "spec": {"image": "i"}}
        )
        effective, issues = evaluate(sub)
        assert issues == []
        assert not hasattr(effective.spec, "backoffLimit")


class TestOwnership:
    def test_creator_may_always_act(self) -> None:
        assert (
            decide(actor="a@x", action="delete", creator="a@x", cluster_id="c", protection=True)
            is None
        )

    def test_others_may_act_without_protection(self) -> None:
        assert (
            decide(actor="b@x", action="delete", creator="a@x", cluster_id="c", protection=False)
            is None
        )

    def test_others_are_denied_with_protection(self) -> None:
        reason = decide(
            actor="b@x", action="suspend", creator="a@x", cluster_id="c", protection=True
        )
        assert reason == (
            "workload ownership protection is on in cluster c: only its creator a@x may suspend it"
        )

    def test_unknown_workload_is_denied(self) -> None:
        reason = decide(
            actor="a@x", action="delete", creator=None, cluster_id=None, protection=False
        )
        assert reason is not None and reason.startswith("unknown workload")


def test_changed_keys() -> None:
    assert changed_keys(None, {"b": 1, "a": 2}) == ["a", "b"]
    assert changed_keys({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 0}) == ["b", "c"]
    assert changed_keys({"a": 1}, {"a": 1}) == []


class TestCliFlags:
    def test_portion_implies_one_device(self) -> None:
        body = _cli("workspace", gpu_portion=0.5)
        assert body["spec"]["compute"] == {
            "gpuDevicesRequest": 1,
            "gpuRequestType": "portion",
            "gpuPortionRequest": 0.5,
        }
        assert SUBMISSION.validate_python(body).kind == "workspace"

    def test_a_compute_resource_gets_the_same_portion_as_a_submission(self) -> None:
        assert ComputeFlags(gpu_portion=0.5).spec() == _cli(gpu_portion=0.5)["spec"]["compute"]

    def test_workers_make_a_distributed_training(self) -> None:
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

    def test_master_flags_give_the_master_its_own_spec_from_the_workers(self) -> None:
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

    def test_inference_flags_make_autoscaling_and_scale_to_zero(self) -> None:
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

    def test_a_credential_becomes_a_variable_by_reference(self) -> None:
        body = _cli(env_credential=["HF_TOKEN=hf", "KEY=s3:access"])
        assert body["spec"]["environmentVariables"] == [
            {"name": "HF_TOKEN", "credential": {"name": "hf", "key": "HF_TOKEN"}},
            {"name": "KEY", "credential": {"name": "s3", "key": "access"}},
        ]
        SUBMISSION.validate_python(body)

    def test_a_volume_flag_is_a_new_claim(self) -> None:
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

    def test_a_model_from_a_catalog(self) -> None:
        flags = WorkloadFlags(image="vllm", model="org/model", model_credential="hf")
        body = Submission(kind="inference", project="p", name="m", flags=flags).body()
        assert body["spec"]["model"] == {
            "catalog": "huggingface",
            "modelName": "org/model",
            "credential": {"name": "hf"},
        }
        SUBMISSION.validate_python(body)

    def test_key_values(self) -> None:
        body = _cli(env=["A=1", "B=x=y"], node_pools="a100, default")
        assert body["spec"]["environmentVariables"] == [
            {"name": "A", "value": "1"},
            {"name": "B", "value": "x=y"},
        ]
        assert body["spec"]["nodePools"] == ["a100", "default"]
        with pytest.raises(ValueError, match="--label takes KEY=VALUE"):
            _cli(labels=["novalue"])
