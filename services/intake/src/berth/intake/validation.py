"""Turning a raw submission into a typed one, or into a list of named issues."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from berth.contracts.events import Issue, SubmissionRequestedData
from berth.contracts.issues import issues_from

# Subjects are NATS tokens: no dots, wildcards or whitespace.
_WORKLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def parse(workload_id: str, data: dict[str, Any]) -> SubmissionRequestedData | list[Issue]:
    issues: list[Issue] = []
    if not _WORKLOAD_ID.match(workload_id):
        issues.append(Issue(field="subject", details="workload id must be 1-64 of [A-Za-z0-9_-]"))
    try:
        parsed = SubmissionRequestedData.model_validate(data)
    except ValidationError as exc:
        return issues + issues_from(exc)
    return issues or parsed


def describe_raw(data: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """Best-effort name, project and kind of a submission that did not validate."""
    sub = data.get("submission") if isinstance(data, dict) else None
    if not isinstance(sub, dict):
        return None, None, None

    def text(key: str) -> str | None:
        value = sub.get(key)
        return value if isinstance(value, str) else None

    return text("name"), text("projectId"), text("kind")


def unknown_project(project: str) -> Issue:
    return Issue(field="projectId", details=f'project "{project}" does not exist')


def name_taken(name: str, project: str) -> Issue:
    return Issue(field="name", details=f'"{name}" already exists in project "{project}"')
