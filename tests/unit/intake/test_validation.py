"""Intake's validation of a submission: every bad field named, without the union's tag."""

from __future__ import annotations

from typing import Any

from berth.contracts.events import Issue
from berth.intake import validation


def _body(**spec: Any) -> dict[str, Any]:
    return {
        "kind": "training",
        "name": "demo",
        "useGivenNameAsPrefix": False,
        "projectId": "team-a",
        "spec": {"image": "busybox", **spec},
    }


def test_valid_submission_parses() -> None:
    parsed = validation.parse("w-1", {"submission": _body(compute={"gpuDevicesRequest": 2})})
    assert not isinstance(parsed, list)
    assert parsed.submission.spec.compute is not None
    assert parsed.submission.spec.compute.gpuDevicesRequest == 2


def test_every_bad_field_is_named_without_the_union_tag() -> None:
    body = _body(compute={"gpuDevicesRequest": -1}, backoffLimit=101, colour="blue")
    issues = validation.parse("w-1", {"submission": body})
    assert isinstance(issues, list)
    fields = {i.field for i in issues}
    assert fields == {"spec.compute.gpuDevicesRequest", "spec.backoffLimit", "spec.colour"}
    assert Issue(field="spec.colour", details="unknown field") in issues


def test_unknown_kind_and_bad_workload_id() -> None:
    body = _body()
    body["kind"] = "batch"
    issues = validation.parse("has.dots", {"submission": body})
    assert isinstance(issues, list)
    assert [i.field for i in issues] == ["subject", "kind"]
    assert "workspace, training, distributed, inference" in issues[1].details


def test_describe_raw_is_best_effort() -> None:
    assert validation.describe_raw({"submission": {"name": "x", "projectId": 3}}) == (
        "x",
        None,
        None,
    )
    assert validation.describe_raw({"submission": "nonsense"}) == (None, None, None)


def test_gpus_cannot_be_asked_for_as_extended_resources() -> None:
    """A GPU asked for as an extended resource would escape the policy's GPU limits and the
    project's quota, which count gpuDevicesRequest: it is refused, naming the field."""
    for resource in ("nvidia.com/gpu", "nvidia.com/mig-1g.5gb", "amd.com/gpu"):
        body = _body(compute={"extendedResources": [{"resource": resource, "quantity": "8"}]})
        issues = validation.parse("w-1", {"submission": body})
        assert isinstance(issues, list), resource
        (issue,) = issues
        assert issue.field == "spec.compute.extendedResources.0.resource"
        assert f"{resource} is a GPU or accelerator resource" in issue.details
        assert "gpuDevicesRequest" in issue.details


def test_other_extended_resources_are_accepted() -> None:
    body = _body(compute={"extendedResources": [{"resource": "rdma/hca", "quantity": "1"}]})
    parsed = validation.parse("w-1", {"submission": body})
    assert not isinstance(parsed, list)


def test_the_node_pools_of_a_typed_submission_are_those_its_json_names() -> None:
    from pydantic import TypeAdapter

    from berth.contracts import boundaries
    from berth.contracts.workload import WorkloadSubmission

    bodies = [
        _body(),
        _body(nodePools=["a100", "default"]),
        {
            "kind": "distributed",
            "name": "d",
            "projectId": "team-a",
            "spec": {"image": "i", "nodePools": ["w"]},
            "masterSpecSameAsWorker": False,
            "masterSpec": {"image": "m", "nodePools": ["m1", "m2"]},
        },
        {"kind": "inference", "name": "s", "projectId": "team-a", "spec": {"nodePools": []}},
    ]
    adapter: TypeAdapter[WorkloadSubmission] = TypeAdapter(WorkloadSubmission)
    for body in bodies:
        sub = adapter.validate_python(body)
        expected = boundaries.node_pools(sub.model_dump(mode="json"))
        assert validation.named_node_pools(sub) == expected
    assert validation.named_node_pools(adapter.validate_python(bodies[2])) == [
        ("spec.nodePools.0", "w"),
        ("masterSpec.nodePools.0", "m1"),
        ("masterSpec.nodePools.1", "m2"),
    ]
