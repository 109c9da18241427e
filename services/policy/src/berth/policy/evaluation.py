"""Policy evaluation without any stored policy: system defaults and the checks every workload
must pass. The engine does the work; this keeps the name the rest of berth knows."""

from __future__ import annotations

from berth.contracts.events import Issue
from berth.contracts.workload import WorkloadSubmission
from berth.policy import engine


def evaluate(submission: WorkloadSubmission) -> tuple[WorkloadSubmission, list[Issue]]:
    """The effective submission (system defaults filled in) and every compliance issue found."""
    return engine.evaluate(submission, None)
