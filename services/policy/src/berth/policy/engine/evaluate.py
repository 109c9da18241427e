"""Evaluating a submission against an effective policy: itemized defaults and instances rules,
imposed data sources, defaults (also ``defaultFrom``), system defaults, then every rule; all
issues are reported, never only the first."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError

from berth.contracts.events import Issue
from berth.contracts.issues import plain
from berth.contracts.policy import ScopeRef
from berth.contracts.workload import MasterSpec, WorkloadSubmission, applicable_system_defaults
from berth.policy.engine.fields import catalog
from berth.policy.engine.merge import Effective, RuleEntry, merge
from berth.policy.engine.rules import Candidate, array_default_problem
from berth.policy.engine.values import get_path, quantity, set_path


@dataclass
class _Part:
    """One pod spec of a submission, checked against the policy paths under ``prefix``."""

    prefix: str
    submitted: dict[str, Any]
    spec: dict[str, Any]


def _issue(path: str, details: str, source: ScopeRef | None) -> Issue:
    suffix = f" (rule from {source})" if source is not None else ""
    return Issue(field=path, details=f"{details}{suffix}")


def _apply_items(eff: Effective, part: _Part, issues: list[Issue]) -> None:
    cat = catalog(eff.policy_type)
    fields = {p for p in eff.items if p.startswith(part.prefix)} | {
        p for p in eff.instances if p.startswith(part.prefix)
    }
    fields |= {
        p.split(".attributes.", 1)[0]
        for p in eff.rules
        if ".attributes." in p and p.startswith(part.prefix)
    }
    fields |= {
        p.split(".attributes.", 1)[0]
        for p in eff.defaults
        if ".attributes." in p and p.startswith(part.prefix)
    }
    for field_path in sorted(fields):
        info = cat[field_path]
        key_name = info.key or "name"
        parts = tuple(field_path[len(part.prefix) :].split("."))
        submitted = get_path(part.submitted, parts) or []
        defaults = eff.items.get(field_path, {})
        inst = eff.instances.get(field_path)
        result: dict[str, dict[str, Any]] = {k: dict(v) for k, (v, _s) in defaults.items()}
        for index, item in enumerate(submitted):
            key = item.get(key_name)
            label = f"{field_path}[{key if key is not None else index}]"
            body = {k: v for k, v in item.items() if k != "exclude"}
            if item.get("exclude"):
                objection = inst.excluding(key, key in defaults) if inst else None
                if objection is not None:
                    issues.append(_issue(label, *objection))
                else:
                    result.pop(key, None)
                continue
            if key is not None and key in defaults:
                default_item = defaults[key][0]
                merged = {**default_item, **body}
                objection = inst.changing(key, merged != default_item) if inst else None
                if objection is not None:
                    issues.append(_issue(label, *objection))
                    continue
                result[key] = merged
                continue
            objection = inst.adding() if inst else None
            if objection is not None:
                issues.append(_issue(label if key is not None else field_path, *objection))
                continue
            result[key if key is not None else f"#{index}"] = body
        attr_defaults = {
            p.rsplit(".", 1)[1]: v
            for p, (v, _s) in eff.defaults.items()
            if p.startswith(f"{field_path}.attributes.")
        }
        items = [{**attr_defaults, **item} for item in result.values()]
        for item in items:
            for attr, value in item.items():
                entry = eff.rules.get(f"{field_path}.attributes.{attr}")
                if entry is not None:
                    label = f"{field_path}[{item.get(key_name)}].{attr}"
                    _check_value(entry, label, value, None, None, issues)
            for path, entry in eff.rules.items():
                attr = path.rsplit(".", 1)[-1]
                if (
                    path.startswith(f"{field_path}.attributes.")
                    and attr not in item
                    and entry.rule.required
                ):
                    label = f"{field_path}[{item.get(key_name)}].{attr}"
                    issues.append(
                        _issue(label, "a value is required", entry.sources.get("required"))
                    )
        if items or submitted:
            set_path(part.spec, parts, items)


def _add_assets(eff: Effective, part: _Part) -> None:
    for asset, _source in eff.assets:
        parts = ("storage", asset.kind)
        current = list(get_path(part.spec, parts) or [])
        if any(item.get("name") == asset.id or item.get("id") == asset.id for item in current):
            continue
        model = catalog(eff.policy_type)[f"{part.prefix}storage.{asset.kind}"].item_model
        named = model is not None and "name" in model.model_fields
        current.append({"name": asset.id, **asset.source} if named else dict(asset.source))
        set_path(part.spec, parts, current)


def _apply_defaults(eff: Effective, part: _Part) -> None:
    for path, (value, _source) in eff.defaults.items():
        if not path.startswith(part.prefix) or ".attributes." in path:
            continue
        parts = tuple(path[len(part.prefix) :].split("."))
        if get_path(part.spec, parts) is None:
            set_path(part.spec, parts, plain_copy(value))
    for path, entry in eff.rules.items():
        source = entry.rule.defaultFrom
        if source is None or not path.startswith(part.prefix):
            continue
        parts = tuple(path[len(part.prefix) :].split("."))
        if get_path(part.spec, parts) is not None:
            continue
        base = get_path(part.spec, tuple(source.field.removeprefix(part.prefix).split(".")))
        amount = quantity(base) if base is not None else None
        if amount is None:
            continue
        computed = amount * Decimal(str(source.factor))
        if entry.info.vtype == "integer":
            set_path(part.spec, parts, int(computed))
        elif entry.info.vtype == "number":
            set_path(part.spec, parts, float(computed))
        else:
            set_path(part.spec, parts, format(computed.normalize(), "f"))


def _check_value(
    entry: RuleEntry,
    label: str,
    value: Any,
    submitted: Any,
    default: tuple[Any, ScopeRef] | None,
    issues: list[Issue],
) -> None:
    """Every rule kind of ``entry`` against the field's effective value."""
    empty = value is None or value == []
    field: Candidate | None = None
    for kind, prepared in entry.checks:
        if kind.on_empty is not empty:
            continue
        if field is None:
            # Made once per field, with the value as a number only if a kind compares numbers.
            numeric = any(k.numeric for k, _ in entry.checks)
            amount = quantity(value) if numeric and not empty else None
            field = Candidate(value, amount, submitted, default, entry.info)
        problem = kind.check(prepared, field)
        if problem is not None:
            issues.append(_issue(label, problem, entry.sources.get(kind.name)))


def _check_rules(eff: Effective, part: _Part, issues: list[Issue]) -> None:
    for path, entry in eff.rules.items():
        if not path.startswith(part.prefix) or ".attributes." in path:
            continue
        parts = tuple(path[len(part.prefix) :].split("."))
        value = get_path(part.spec, parts)
        submitted = get_path(part.submitted, parts)
        _check_value(entry, path, value, submitted, eff.defaults.get(path), issues)
    cat = catalog(eff.policy_type)
    for path, default in eff.defaults.items():
        if not path.startswith(part.prefix) or cat[path].vtype != "array":
            continue
        explicit = eff.rules.get(path)
        submitted = get_path(part.submitted, tuple(path[len(part.prefix) :].split(".")))
        problem = array_default_problem(
            explicit.rule if explicit is not None else None, submitted, default
        )
        if problem is not None:
            issues.append(_issue(path, problem, default[1]))


def _system_defaults(kind: str, spec: BaseModel) -> dict[str, Any]:
    found = applicable_system_defaults(spec)  # type: ignore[arg-type]
    if kind == "inference":
        # Run:ai applies neither retries nor auto-deletion to inference.
        found.pop("autoDeletionTimeAfterCompletionSeconds", None)
    return found


def _with_system_defaults(
    kind: str, model: type[BaseModel], part: _Part, value: BaseModel
) -> BaseModel:
    extra = _system_defaults(kind, value)
    if not extra:
        return value
    candidate = plain_copy(part.spec)
    for path, default in extra.items():
        set_path(candidate, tuple(path.split(".")), default)
    try:
        filled = model.model_validate(candidate)
    except ValidationError:
        # A system default contradicts what the submission chose: leave that one out.
        for path, default in extra.items():
            single = plain_copy(part.spec)
            set_path(single, tuple(path.split(".")), default)
            try:
                value = model.model_validate(single)
            except ValidationError:
                continue
            part.spec = single
        return value
    part.spec = candidate
    return filled


def _validation_issues(prefix: str, exc: ValidationError) -> list[Issue]:
    issues = []
    for error in exc.errors():
        field = prefix + ".".join(str(p) for p in error["loc"] if p != "__root__")
        issues.append(Issue(field=field, details=plain(error, field)))
    return issues


def evaluate(
    submission: WorkloadSubmission, eff: Effective | None = None
) -> tuple[WorkloadSubmission, list[Issue]]:
    """The effective submission (defaults, imposed data sources, defaultFrom and system defaults
    filled in) and every compliance issue found, never only the first."""
    kind = submission.kind
    if eff is None:
        eff = merge(kind, ())
    issues: list[Issue] = []
    spec_model = type(submission.spec)
    parts = [
        _Part("worker." if kind == "distributed" else "", *_dumps(submission.spec)),
    ]
    master = getattr(submission, "masterSpec", None)
    if master is not None:
        parts.append(_Part("master.", *_dumps(master)))
    for part in parts:
        _apply_items(eff, part, issues)
        _add_assets(eff, part)
        _apply_defaults(eff, part)

    built: list[BaseModel] = []
    decoded: list[BaseModel] = [submission.spec] if master is None else [submission.spec, master]
    for part, given in zip(parts, decoded, strict=True):
        model = spec_model if part.prefix != "master." else MasterSpec
        try:
            # A spec the policy left as it came is the one validated with the submission.
            same = type(given) is model and part.spec == part.submitted
            value = given if same else model.model_validate(part.spec)
            built.append(_with_system_defaults(kind, model, part, value))
        except ValidationError as exc:
            issues.extend(_validation_issues(part.prefix or "", exc))
    for part in parts:
        _check_rules(eff, part, issues)
    if kind == "distributed" and master is None and not getattr(submission, "noMaster", None):
        # The master runs the workers' spec: the master's rules bind it too.
        _check_rules(eff, _Part("master.", parts[0].submitted, parts[0].spec), issues)

    effective = submission
    if len(built) == len(parts):
        update: dict[str, Any] = {"spec": built[0]}
        if master is not None:
            update["masterSpec"] = built[1]
        effective = submission.model_copy(update=update)
    if not effective.spec.image and not any(i.field.endswith("image") for i in issues):
        issues.append(
            Issue(
                field="spec.image",
                details="an image is required: set one, or use an environment that has one",
            )
        )
    if master is not None and not effective.masterSpec.image:  # type: ignore[union-attr]
        issues.append(Issue(field="masterSpec.image", details="the master needs an image"))
    return effective, _unique(issues)


def _dumps(spec: BaseModel) -> tuple[dict[str, Any], dict[str, Any]]:
    # Dumped twice rather than deep-copied: pydantic builds a fresh tree faster than
    # copy.deepcopy walks one.
    return spec.model_dump(exclude_none=True), spec.model_dump(exclude_none=True)


def plain_copy(value: Any) -> Any:
    """A copy of a tree of dicts and lists (a dumped spec, a policy's default) whose leaves are
    immutable: what ``copy.deepcopy`` makes of it, in a fraction of its time (it keeps a memo
    and dispatches on every value's type)."""
    if isinstance(value, dict):
        return {k: plain_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain_copy(v) for v in value)
    if isinstance(value, set | bytearray):
        return copy.deepcopy(value)
    return value


def _unique(issues: list[Issue]) -> list[Issue]:
    seen: set[tuple[str, str]] = set()
    out: list[Issue] = []
    for issue in issues:
        if (issue.field, issue.details) not in seen:
            seen.add((issue.field, issue.details))
            out.append(issue)
    return out
