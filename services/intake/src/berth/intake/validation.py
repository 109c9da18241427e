"""Turning a raw submission into a typed one, or into a list of named issues."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import ValidationError

from berth.contracts import boundaries
from berth.contracts.events import Issue, SubmissionRequestedData
from berth.contracts.issues import issues_from
from berth.contracts.workload import WorkloadSubmission


def parse(workload_id: str, data: dict[str, Any]) -> SubmissionRequestedData | list[Issue]:
    issues: list[Issue] = []
    if problem := boundaries.workload_id_problem(workload_id):
        issues.append(Issue(field="subject", details=problem))
    try:
        parsed = SubmissionRequestedData.model_validate(data)
    except ValidationError as exc:
        return issues + issues_from(exc)
    return issues or parsed


def at_the_boundary(data: Any, size: int) -> list[Issue]:
    """What must be refused before anything else looks at a submission: a size far beyond
    any real spec, values nothing downstream can store or plan with, names Kubernetes would
    refuse. Each check is a function of ``berth.contracts.boundaries``."""
    if size > boundaries.MAX_SUBMISSION_BYTES:
        return [
            Issue(
                field="submission",
                details=f"the submission takes {size} bytes; the limit is "
                f"{boundaries.MAX_SUBMISSION_BYTES} (256 KiB)",
            )
        ]
    issues = [
        i.model_copy(update={"field": i.field.removeprefix("submission.")})
        for i in boundaries.unstorable_values(data)
    ]
    sub = data.get("submission") if isinstance(data, dict) else None
    if isinstance(sub, dict):
        issues += boundaries.absurd_quantities(sub)
        issues += boundaries.long_command_lines(sub)
        issues += boundaries.kubernetes_names(sub)
        issues += boundaries.simulation_annotations(sub)
    return issues


def content_hash(data: Any) -> str:
    """What identifies a submission's content, to tell a client's retry (same content) from a
    different submission reusing a workload id."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def id_reused(workload_id: str) -> Issue:
    return Issue(
        field="subject",
        details=f"workload id {workload_id} is already used by a different submission",
    )


def named_node_pools(submission: WorkloadSubmission) -> list[tuple[str, str]]:
    """(field, node pool) of every node pool a typed submission names: what
    ``boundaries.node_pools`` finds in its JSON, without dumping it."""
    found: list[tuple[str, str]] = []
    for root in ("spec", "masterSpec"):
        spec = getattr(submission, root, None)
        pools = spec.nodePools if spec is not None else None
        found.extend((f"{root}.nodePools.{index}", pool) for index, pool in enumerate(pools or ()))
    return found


def unknown_node_pool(field: str, pool: str) -> Issue:
    return Issue(field=field, details=f'node pool "{pool}" does not exist')


def describe_raw(data: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """Best-effort name, project and kind of a submission that did not validate."""
    sub = data.get("submission") if isinstance(data, dict) else None
    if not isinstance(sub, dict):
        return None, None, None

    def text(key: str) -> str | None:
        value = sub.get(key)
        # Recorded as given, within bounds: the record of a rejection must itself be storable.
        return boundaries.storable(value)[:253] if isinstance(value, str) else None

    return text("name"), text("projectId"), text("kind")


def unknown_project(project: str) -> Issue:
    return Issue(field="projectId", details=f'project "{project}" does not exist')


def name_taken(name: str, project: str) -> Issue:
    return Issue(field="name", details=f'"{name}" already exists in project "{project}"')


def dry_run_passed() -> Issue:
    """Why a dry run that would be received was not: it was a dry run."""
    return Issue(
        field="dryRun", details="dry run: the submission would be received; nothing created"
    )
