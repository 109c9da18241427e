"""Policy evaluation (pure): system defaults and the checks every workload must pass."""

from __future__ import annotations

from typing import Any

from berth.contracts.events import Issue
from berth.contracts.workload import (
    DEFAULT_AUTO_DELETION_SECONDS,
    DEFAULT_BACKOFF_LIMIT,
    WorkloadSubmission,
)


def _system_defaults(kind: str) -> dict[str, Any]:
    # Run:ai applies neither retries nor auto-deletion to inference.
    if kind == "inference":
        return {}
    return {
        "backoffLimit": DEFAULT_BACKOFF_LIMIT,
        "autoDeletionTimeAfterCompletionSeconds": DEFAULT_AUTO_DELETION_SECONDS,
    }


def _fill(spec: Any, defaults: dict[str, Any]) -> Any:
    unset = {k: v for k, v in defaults.items() if getattr(spec, k, v) is None}
    return spec.model_copy(update=unset) if unset else spec


def evaluate(submission: WorkloadSubmission) -> tuple[WorkloadSubmission, list[Issue]]:
    """The effective submission (defaults filled in) and every compliance issue found."""
    defaults = _system_defaults(submission.kind)
    update: dict[str, Any] = {"spec": _fill(submission.spec, defaults)}
    master = getattr(submission, "masterSpec", None)
    if master is not None:
        update["masterSpec"] = _fill(master, defaults)
    effective = submission.model_copy(update=update)

    issues: list[Issue] = []
    if not effective.spec.image:
        issues.append(
            Issue(
                field="spec.image",
                details="an image is required: set one, or use an environment that has one",
            )
        )
    if master is not None and not master.image:
        issues.append(Issue(field="masterSpec.image", details="the master needs an image"))
    return effective, issues
