"""Pydantic validation errors in plain words: one ``Issue`` (field, details) per problem."""

from __future__ import annotations

from pydantic import ValidationError

from berth.contracts.events import Issue


def issues_from_validation_error(exc: ValidationError) -> list[Issue]:
    issues = []
    for error in exc.errors(include_url=False, include_input=False):
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "json_invalid":
            message = f"not valid JSON: {message}"
        field = ".".join(str(p) for p in error["loc"]) or "request"
        issues.append(Issue(field=field, details=message))
    return issues
