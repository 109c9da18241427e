"""Validation errors in berth's own words.

pydantic's messages speak of Python ("Input should be greater than 0", "Value error, ...", enum
values in their JSON spelling). Every place that turns a ``ValidationError`` into named issues
(intake's rejections, the dry run, the CLI) goes through ``issues_from``, so a user reads the
same sentence whichever way they submitted: the field's JSON path, what it must be, and the
value they gave.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from berth.contracts.events import Issue
from berth.contracts.workload_kinds import KIND_NAMES

# Discriminator tags pydantic inserts into error locations of the submission union.
KIND_TAGS = KIND_NAMES

# Fields whose choices are accepted in any case; users (and the CLI) write them in lowercase.
LOWERCASE_CHOICES = frozenset({"distributedFramework"})

_MAX_SHOWN = 60


def field_path(loc: Iterable[int | str], *, drop: tuple[str, ...] = ("submission",)) -> str:
    """``("submission", "training", "spec", "compute", "cpuCoreRequest")`` ->
    ``spec.compute.cpuCoreRequest``: the path as the JSON (and the CLI's messages) name it."""
    parts = [str(p) for p in loc]
    if drop and parts[: len(drop)] == list(drop):
        parts = parts[len(drop) :]
    if len(parts) > 1 and parts[0] in KIND_TAGS:
        parts = parts[1:]
    return ".".join(parts) or (drop[-1] if drop else "value")


def shown(value: Any) -> str:
    """A value as a message quotes it: short, and never the whole of a large object."""
    text = repr(value) if isinstance(value, str) else str(value)
    if isinstance(value, (dict, list)):
        text = type(value).__name__ if len(text) > _MAX_SHOWN else text
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _choices(expected: str, field: str) -> str:
    # pydantic lists literal choices as "'a', 'b' or 'c'".
    names = [c.strip().strip("'\"") for c in expected.replace(" or ", ", ").split(",")]
    if field in LOWERCASE_CHOICES:
        names = [n.lower() for n in names]
    return ", ".join(names)


def plain(error: ErrorDetails | Mapping[str, Any], field: str = "") -> str:
    """What is wrong with the value, in words, ending with the value given when there is one."""
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    has_input = "input" in error and not isinstance(error.get("input"), (dict, list))
    got = f"; got {shown(error['input'])}" if has_input else ""
    last = field.rsplit(".", 1)[-1]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = f"; got {shown(ctx['tag'])}" if ctx.get("tag") is not None else ""
        return f"must be one of {', '.join(KIND_TAGS)}{tag}"
    if kind in ("literal_error", "enum"):
        return f"must be one of {_choices(str(ctx.get('expected', '')), last)}{got}"
    comparisons = {
        "greater_than": ("greater than", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("less than", "lt"),
        "less_than_equal": ("at most", "le"),
        "multiple_of": ("a multiple of", "multiple_of"),
    }
    if kind in comparisons:
        words, key = comparisons[kind]
        return f"must be {words} {ctx.get(key)}{got}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}{got}"
    if kind in ("string_too_short", "too_short"):
        if ctx.get("min_length") == 1:
            return "must not be empty"
        return f"must have at least {ctx.get('min_length')} characters or items{got}"
    if kind in ("string_too_long", "too_long"):
        return f"must have at most {ctx.get('max_length')} characters or items{got}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be a whole number{got}"
    if kind in ("float_parsing", "float_type"):
        return f"must be a number{got}"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false{got}"
    if kind in ("string_type",):
        return f"must be text{got}"
    if kind in ("list_type",):
        return f"must be a list{got}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be an object{got}"
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if message.startswith("Input should be "):
        message = "must be " + message.removeprefix("Input should be ") + got
    return message


def issues_from(error: ValidationError, *, drop: tuple[str, ...] = ("submission",)) -> list[Issue]:
    """Every problem of a ``ValidationError``, one named issue each."""
    issues = []
    for e in error.errors(include_url=False):
        loc = tuple(e["loc"])
        if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
            # Reported on the union itself; the field at fault is its discriminator.
            loc = (*loc, "kind")
        field = field_path(loc, drop=drop)
        issues.append(Issue(field=field, details=plain(e, field)))
    return issues


def sentence(issue: Issue) -> str:
    return f"{issue.field}: {issue.details}"


def issues_from_validation_error(exc: ValidationError) -> list[Issue]:
    """What is wrong with a request a service was asked (a query that is not what its subject
    takes), in the same words. The values given are left out: a request may carry secrets."""
    issues = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in error["loc"]) or "request"
        if error["type"] == "json_invalid":
            details = "not valid JSON: " + str(error["msg"]).removeprefix("Invalid JSON: ")
        else:
            details = plain(error, field)
        issues.append(Issue(field=field, details=details))
    return issues
