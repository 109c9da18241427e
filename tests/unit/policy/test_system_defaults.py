"""The system defaults every workload gets when no policy says otherwise."""

from __future__ import annotations

from pydantic import TypeAdapter

from berth.contracts.workload import WorkloadSubmission
from berth.policy.evaluation import evaluate

SUBMISSION: TypeAdapter[WorkloadSubmission] = TypeAdapter(WorkloadSubmission)


def test_training_gets_system_defaults() -> None:
    sub = SUBMISSION.validate_python(
        {"kind": "training", "name": "t", "projectId": "p", "spec": {"image": "i"}}
    )
    effective, issues = evaluate(sub)
    assert issues == []
    assert effective.spec.backoffLimit == 6
    assert effective.spec.autoDeletionTimeAfterCompletionSeconds == 30 * 24 * 3600


def test_submitted_values_win_over_defaults() -> None:
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


def test_missing_image_is_a_compliance_issue() -> None:
    sub = SUBMISSION.validate_python(
        {"kind": "workspace", "name": "w", "projectId": "p", "spec": {}}
    )
    _, issues = evaluate(sub)
    assert [i.field for i in issues] == ["spec.image"]


def test_inference_gets_no_backoff() -> None:
    sub = SUBMISSION.validate_python(
        {"kind": "inference", "name": "s", "projectId": "p", "spec": {"image": "i"}}
    )
    effective, issues = evaluate(sub)
    assert issues == []
    assert not hasattr(effective.spec, "backoffLimit")


def test_a_spec_left_as_it_came_is_not_validated_again() -> None:
    complete = {
        "image": "i",
        "backoffLimit": 1,
        "autoDeletionTimeAfterCompletionSeconds": 60,
        "terminateAfterPreemption": True,
    }
    sub = SUBMISSION.validate_python(
        {"kind": "training", "name": "t", "projectId": "p", "spec": complete}
    )
    effective, issues = evaluate(sub)
    assert issues == []
    assert effective.spec is sub.spec


def test_a_distributed_master_left_as_it_came_is_kept_too() -> None:
    spec = {"image": "i", "backoffLimit": 1, "terminateAfterPreemption": True, "numWorkers": 2}
    sub = SUBMISSION.validate_python(
        {
            "kind": "distributed",
            "name": "d",
            "projectId": "p",
            "spec": {**spec, "autoDeletionTimeAfterCompletionSeconds": 60},
            "masterSpecSameAsWorker": False,
            "masterSpec": {
                "image": "m",
                "backoffLimit": 1,
                "terminateAfterPreemption": True,
                "autoDeletionTimeAfterCompletionSeconds": 60,
            },
        }
    )
    effective, issues = evaluate(sub)
    assert issues == []
    assert effective.masterSpec is sub.masterSpec  # type: ignore[union-attr]
    assert effective.spec.numWorkers == 2
