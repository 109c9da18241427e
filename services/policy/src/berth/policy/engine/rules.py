"""Rule kinds, as a table: one class per kind a field rule may carry.

Each kind says which value types it applies to and does its part at each stage:

* ``validate``: on save, is the rule well formed for this field;
* ``tighten``: merging a narrower scope's rule into the effective one (allowOverride) may only
  tighten it, never loosen it;
* ``prepare`` and ``check``: evaluating a submitted value (prepared once per merged policy, so the
  per-submission work is a comparison).

A new rule kind is one class here, registered in ``RULE_KINDS`` (plus its field on
``FieldRule``, the published shape of a rule).

Itemized fields (environment variables, labels, storage...) also take rules on their items
(``<field>.instances``): those kinds are ``INSTANCES_KINDS``, one class each too (plus its field on
``InstancesRule``). They keep a state per effective policy (tightened scope by scope) and may
object when a submission excludes, changes or adds an item. Arrays follow Run:ai's ArrayRules:
see ``array_default_problem``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Final

from berth.contracts.events import Issue
from berth.contracts.policy import FieldRule, InstancesRule, OptionItem, ScopeRef
from berth.policy.engine.fields import NUMERIC, FieldInfo, ValueType
from berth.policy.engine.values import bound, fmt, is_number, quantity, same, value_problem


class _Keep:
    """``tighten``'s answer when the effective rule stays as it is."""


KEEP: Final = _Keep()
Default = tuple[Any, ScopeRef] | None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A field's effective value in a submission, as each rule kind's ``check`` sees it."""

    value: Any
    amount: Decimal | None  # the value as a number (only for ``numeric`` kinds; else None)
    submitted: Any  # what the submitter wrote (None: not set), before defaults
    default: Default  # the policy default and the scope it comes from
    info: FieldInfo


@dataclass(frozen=True, slots=True)
class Target:
    """Where a rule is being saved: the rule, its field, its name in issues (``rules.<path>``)
    and the whole field catalogue (for rules that name other fields)."""

    rule: FieldRule
    info: FieldInfo
    where: str
    catalogue: Mapping[str, FieldInfo]


class RuleKind:
    """One kind of constraint on a field's value; ``name`` is its key in a rule."""

    name: ClassVar[str]
    vtypes: ClassVar[frozenset[ValueType]]
    # Checked when the field ends without a value (only ``required``); the others check values.
    on_empty: ClassVar[bool] = False
    # Checks the value as a number (a Decimal, None when the value is not one).
    numeric: ClassVar[bool] = False

    def validate(self, param: Any, target: Target) -> list[Issue]:
        """On save: why ``param`` is not a well-formed rule of this kind for ``target``'s field;
        only called when the field's type allows the kind."""
        return []

    def tighten(self, current: Any, param: Any, info: FieldInfo) -> Any:
        """The effective value once a narrower scope adds ``param``, or ``KEEP``."""
        raise NotImplementedError

    def prepare(self, param: Any, rule: FieldRule, info: FieldInfo) -> Any:
        """What ``check`` needs, computed once per merged policy; None: nothing to check."""
        return param

    def check(self, prepared: Any, field: Candidate) -> str | None:
        """Why the field's effective value breaks this rule, or None."""
        return None


_ALL: frozenset[ValueType] = frozenset({"boolean", "string", "integer", "number", "quantity"})


class Required(RuleKind):
    name = "required"
    vtypes = _ALL | {"array"}
    on_empty = True

    def tighten(self, current: Any, param: Any, info: FieldInfo) -> Any:
        return True if param and not current else KEEP

    def prepare(self, param: Any, rule: FieldRule, info: FieldInfo) -> Any:
        return param or None

    def check(self, prepared: Any, field: Candidate) -> str | None:
        return "a value is required"


class CanEdit(RuleKind):
    name = "canEdit"
    vtypes = _ALL | {"array"}

    def tighten(self, current: Any, param: Any, info: FieldInfo) -> Any:
        return False if param is False and current is not False else KEEP

    def prepare(self, param: Any, rule: FieldRule, info: FieldInfo) -> Any:
        return True if param is False else None

    def check(self, prepared: Any, field: Candidate) -> str | None:
        if field.submitted is None:
            return None
        if field.default is None:
            return "cannot be set: the policy does not allow editing it"
        if not same(field.info, field.submitted, field.default[0]):
            return f"cannot be changed from the policy default {fmt(field.default[0])}"
        return None


class Options(RuleKind):
    name = "options"
    vtypes = frozenset({"string"})

    def validate(self, param: Any, target: Target) -> list[Issue]:
        return [
            Issue(field=f"{target.where}.options", details=problem)
            for option in param
            if (problem := value_problem(target.info, option.value))
        ]

    def tighten(self, current: Any, param: Any, info: FieldInfo) -> Any:
        if current is None:
            return param
        allowed = {o.value for o in param}
        return [o for o in current if o.value in allowed]

    def prepare(self, param: Any, rule: FieldRule, info: FieldInfo) -> Any:
        options: list[OptionItem] = param
        allowed = [o.value for o in options]
        return allowed, f"value must be one of: {', '.join(map(fmt, allowed))}"

    def check(self, prepared: Any, field: Candidate) -> str | None:
        allowed, message = prepared
        return None if field.value in allowed else str(message)


class _Bound(RuleKind):
    vtypes = NUMERIC
    numeric = True

    def validate(self, param: Any, target: Target) -> list[Issue]:
        where = f"{target.where}.{self.name}"
        if target.info.vtype == "quantity" and quantity(param) is None:
            return [Issue(field=where, details=f"{param!r} is not a quantity")]
        if target.info.vtype != "quantity" and not is_number(param):
            return [Issue(field=where, details=f"{param!r} is not a number")]
        return []

    def _tighter(self, a: Decimal, b: Decimal) -> bool:
        raise NotImplementedError

    def tighten(self, current: Any, param: Any, info: FieldInfo) -> Any:
        old, new = bound(info, current), bound(info, param)
        if old is None or new is None:
            return param if old is None else KEEP
        return param if self._tighter(old, new) else KEEP


class Min(_Bound):
    name = "min"

    def _tighter(self, a: Decimal, b: Decimal) -> bool:
        return b > a

    def prepare(self, param: Any, rule: FieldRule, info: FieldInfo) -> Any:
        low = bound(info, param)
        return None if low is None else (low, f"value must be no less than {fmt(param)}")

    def check(self, prepared: Any, field: Candidate) -> str | None:
        low, message = prepared
        return str(message) if field.amount is not None and field.amount < low else None


class Max(_Bound):
    name = "max"

    def validate(self, param: Any, target: Target) -> list[Issue]:
        issues = super().validate(param, target)
        low, high = bound(target.info, target.rule.min), bound(target.info, param)
        if low is not None and high is not None and low > high:
            details = f"min ({target.rule.min}) is greater than max ({param})"
            issues.append(Issue(field=target.where, details=details))
        return issues

    def _tighter(self, a: Decimal, b: Decimal) -> bool:
        return b < a

    def prepare(self, param: Any, rule: FieldRule, info: FieldInfo) -> Any:
        high = bound(info, param)
        return None if high is None else (high, f"value must be no greater than {fmt(param)}")

    def check(self, prepared: Any, field: Candidate) -> str | None:
        high, message = prepared
        return str(message) if field.amount is not None and field.amount > high else None


class Step(RuleKind):
    name = "step"
    vtypes = frozenset({"integer", "number"})
    numeric = True

    def tighten(self, current: Any, param: Any, info: FieldInfo) -> Any:
        return param if current is None else KEEP

    def prepare(self, param: Any, rule: FieldRule, info: FieldInfo) -> Any:
        if info.vtype == "quantity":
            return None
        low = bound(info, rule.min)
        start = low if low is not None else Decimal(0)
        origin = fmt(rule.min if low is not None else 0)
        return start, Decimal(str(param)), f"value must be {origin} plus a multiple of {fmt(param)}"

    def check(self, prepared: Any, field: Candidate) -> str | None:
        start, step, message = prepared
        if field.amount is None or (field.amount - start) % step == 0:
            return None
        return str(message)


class DefaultFromKind(RuleKind):
    """Not a constraint: the field's default is computed from another field (see evaluation)."""

    name = "defaultFrom"
    vtypes = NUMERIC

    def validate(self, param: Any, target: Target) -> list[Issue]:
        path = target.where.removeprefix("rules.")
        prefix = path.split(".", 1)[0] + "." if path.startswith(("worker.", "master.")) else ""
        source = param.field
        source_info = target.catalogue.get(f"{prefix}{source}") or target.catalogue.get(source)
        if source_info is None or source_info.vtype not in NUMERIC:
            return [
                Issue(
                    field=f"{target.where}.defaultFrom.field",
                    details=f"{source!r} is not a numeric field of the spec",
                )
            ]
        return []

    def tighten(self, current: Any, param: Any, info: FieldInfo) -> Any:
        return param

    def prepare(self, param: Any, rule: FieldRule, info: FieldInfo) -> Any:
        return None


RULE_KINDS: tuple[RuleKind, ...] = (
    Required(),
    CanEdit(),
    Options(),
    Min(),
    Max(),
    Step(),
    DefaultFromKind(),
)
"""Every rule kind, in the order a submission's issues are reported."""

# Keys of a rule that are not constraints on the value itself.
META_KINDS = frozenset({"allowOverride"})

ALLOWED_KINDS: dict[str, frozenset[str]] = {
    vtype: frozenset(k.name for k in RULE_KINDS if vtype in k.vtypes)
    for vtype in ("boolean", "string", "integer", "number", "quantity", "array")
}

Check = tuple[RuleKind, Any]


def validate_rule(
    cat: Mapping[str, FieldInfo], path: str, info: FieldInfo, rule: FieldRule
) -> list[Issue]:
    """Every problem of ``rule`` as a rule of this field, named ``rules.<path>[.<kind>]``."""
    where = f"rules.{path}"
    allowed = ALLOWED_KINDS.get(info.vtype, frozenset())
    set_kinds = {k for k in rule.model_fields_set if getattr(rule, k) is not None} - META_KINDS
    issues = [
        Issue(field=where, details=f"rule {kind!r} is not allowed for a {info.vtype} field")
        for kind in sorted(set_kinds - allowed)
    ]
    target = Target(rule, info, where, cat)
    for kind in RULE_KINDS:
        param = getattr(rule, kind.name)
        if param is not None and kind.name in allowed:
            issues.extend(kind.validate(param, target))
    return issues


def tighten_rule(
    current: FieldRule, rule: FieldRule, info: FieldInfo
) -> tuple[FieldRule, list[str]]:
    """``current`` tightened by a narrower scope's ``rule``, and the kinds that scope now owns."""
    update: dict[str, Any] = {}
    for kind in RULE_KINDS:
        param = getattr(rule, kind.name)
        if param is None:
            continue
        value = kind.tighten(getattr(current, kind.name), param, info)
        if value is not KEEP:
            update[kind.name] = value
    return current.model_copy(update=update), list(update)


def prepare_checks(rule: FieldRule, info: FieldInfo) -> tuple[Check, ...]:
    """The checks an effective rule makes of a value, each with what it precomputed."""
    checks: list[Check] = []
    for kind in RULE_KINDS:
        param = getattr(rule, kind.name)
        if param is None or (kind.numeric and info.vtype not in NUMERIC):
            continue
        prepared = kind.prepare(param, rule, info)
        if prepared is not None:
            checks.append((kind, prepared))
    return tuple(checks)


# --- rules on the items of an itemized field --------------------------------------------------

Objection = tuple[str, ScopeRef | None]
"""Why a submission may not do something to an item, and the scope whose rule says so."""


class InstancesKind:
    """One kind of rule on an itemized field's items; ``name`` is its key in ``InstancesRule``.

    Its state in an effective policy starts as None and is tightened by each scope's rule."""

    name: ClassVar[str]

    def tighten(self, state: Any, param: Any, source: ScopeRef) -> Any:
        raise NotImplementedError

    def describe(self, state: Any) -> list[tuple[dict[str, Any], ScopeRef]]:
        """The effective rule, as rule objects with the scope of each."""
        raise NotImplementedError

    def excluding(self, state: Any, key: Any, is_default: bool) -> Objection | None:
        return None

    def changing(self, state: Any, key: Any, changed: bool) -> Objection | None:
        return None

    def adding(self, state: Any) -> Objection | None:
        return None


class CanAdd(InstancesKind):
    """``canAdd: false``: a submission may add no item beyond the defaults. The state is the
    scope that said so first (None: items may be added)."""

    name = "canAdd"

    def tighten(self, state: Any, param: Any, source: ScopeRef) -> Any:
        return source if param is False and state is None else state

    def describe(self, state: Any) -> list[tuple[dict[str, Any], ScopeRef]]:
        return [] if state is None else [({"canAdd": False}, state)]

    def adding(self, state: Any) -> Objection | None:
        if state is None:
            return None
        return "cannot be added: the policy allows only its default items", state


class Locked(InstancesKind):
    """``locked: [key, ...]``: default items a submission may neither change nor exclude. The
    state maps each locked key to the scope that locked it first."""

    name = "locked"

    def tighten(self, state: Any, param: Any, source: ScopeRef) -> Any:
        locked: dict[str, ScopeRef] = dict(state or {})
        for key in param:
            locked.setdefault(key, source)
        return locked

    def describe(self, state: Any) -> list[tuple[dict[str, Any], ScopeRef]]:
        return [({"locked": [key]}, source) for key, source in (state or {}).items()]

    def excluding(self, state: Any, key: Any, is_default: bool) -> Objection | None:
        if state and is_default and key in state:
            return "cannot be excluded: the item is locked", state[key]
        return None

    def changing(self, state: Any, key: Any, changed: bool) -> Objection | None:
        if state and changed and key in state:
            return "cannot be changed: the item is locked", state[key]
        return None


INSTANCES_KINDS: tuple[InstancesKind, ...] = (CanAdd(), Locked())


def tighten_instances(
    state: dict[str, Any], rule: InstancesRule, source: ScopeRef
) -> dict[str, Any]:
    """The effective instances rules once ``source``'s rule joins them (they only tighten)."""
    out = dict(state)
    for kind in INSTANCES_KINDS:
        param = getattr(rule, kind.name)
        if param is not None:
            out[kind.name] = kind.tighten(state.get(kind.name), param, source)
    return out


def array_default_problem(
    explicit: FieldRule | None, submitted: Any, default: tuple[Any, ScopeRef]
) -> str | None:
    """Run:ai's ArrayRules: an array the policy gives a default cannot be changed unless a rule
    on it says ``canEdit`` (either way)."""
    if explicit is not None and explicit.canEdit is not None:
        return None
    if submitted is None or submitted == default[0]:
        return None
    return (
        f"cannot be changed from the policy default {fmt(default[0])} "
        "(arrays are not editable unless a rule says canEdit: true)"
    )
