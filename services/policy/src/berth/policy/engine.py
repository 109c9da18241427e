"""The policy engine (pure): field catalog, policy validation, merging along a branch, evaluation.

Nothing here touches the database or the bus, so the same code answers dry runs, evaluates
batches of submissions and backs the property tests.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any, Literal, Union

from pydantic import BaseModel, ValidationError

from berth.contracts.events import Issue
from berth.contracts.issues import plain
from berth.contracts.policy import (
    SCOPES,
    EffectiveAsset,
    EffectiveDefault,
    EffectivePolicy,
    EffectiveRule,
    FieldRule,
    ImposedAsset,
    InstancesRule,
    PolicyDocument,
    PolicyMeta,
    PolicyType,
    ScopeRef,
)
from berth.contracts.quantity import Quantity, quantity_to_decimal
from berth.contracts.workload import (
    DistributedSpec,
    InferenceSpec,
    MasterSpec,
    TrainingSpec,
    WorkloadSubmission,
    WorkspaceSpec,
    applicable_system_defaults,
)

ValueType = Literal[
    "boolean", "string", "integer", "number", "quantity", "array", "instances", "section"
]

ALLOWED_KINDS: dict[str, frozenset[str]] = {
    "boolean": frozenset({"required", "canEdit"}),
    "string": frozenset({"required", "canEdit", "options"}),
    "integer": frozenset({"required", "canEdit", "min", "max", "step", "defaultFrom"}),
    "number": frozenset({"required", "canEdit", "min", "max", "step", "defaultFrom"}),
    "quantity": frozenset({"required", "canEdit", "min", "max", "defaultFrom"}),
    "array": frozenset({"required", "canEdit"}),
}
# Rule kinds that are not constraints on the value itself.
_META_KINDS = frozenset({"allowOverride"})

_SPECS: dict[str, dict[str, type[BaseModel]]] = {
    "workspace": {"": WorkspaceSpec},
    "training": {"": TrainingSpec},
    "inference": {"": InferenceSpec},
    "distributed": {"worker.": DistributedSpec, "master.": MasterSpec},
}


@dataclass(frozen=True)
class FieldInfo:
    path: str
    vtype: ValueType
    choices: tuple[Any, ...] = ()
    key: str | None = None  # key attribute of an itemized field's items
    item_model: type[BaseModel] | None = None


# --- field catalog ---------------------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _scalar(annotation: Any) -> tuple[ValueType, tuple[Any, ...]] | None:
    ann = _unwrap(annotation)
    if ann == Quantity:
        return "quantity", ()
    if typing.get_origin(ann) is Literal:
        return "string", typing.get_args(ann)
    if ann is bool:
        return "boolean", ()
    if ann is int:
        return "integer", ()
    if ann is float:
        return "number", ()
    if ann is str:
        return "string", ()
    return None


def _walk_model(model: type[BaseModel], prefix: str, out: dict[str, FieldInfo]) -> None:
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        ann = _unwrap(info.annotation)
        scalar = _scalar(ann)
        if scalar is not None:
            out[path] = FieldInfo(path, scalar[0], scalar[1])
        elif isinstance(ann, type) and issubclass(ann, BaseModel):
            out[path] = FieldInfo(path, "section")
            _walk_model(ann, f"{path}.", out)
        elif typing.get_origin(ann) is list:
            (item,) = typing.get_args(ann)
            if isinstance(item, type) and issubclass(item, BaseModel):
                fields = item.model_fields
                key = next((k for k in ("name", "resource", "id") if k in fields), None)
                out[path] = FieldInfo(path, "section", key=key, item_model=item)
                out[f"{path}.instances"] = FieldInfo(
                    f"{path}.instances", "instances", key=key, item_model=item
                )
                out[f"{path}.attributes"] = FieldInfo(f"{path}.attributes", "section")
                for attr, attr_info in fields.items():
                    attr_type = _scalar(attr_info.annotation)
                    if attr_type is not None and attr not in (key, "exclude"):
                        attr_path = f"{path}.attributes.{attr}"
                        out[attr_path] = FieldInfo(attr_path, attr_type[0], attr_type[1])
            else:
                out[path] = FieldInfo(path, "array")


@cache
def catalog(policy_type: PolicyType) -> Mapping[str, FieldInfo]:
    """Every path a policy of this type may name, with its value type."""
    out: dict[str, FieldInfo] = {}
    for prefix, model in _SPECS[policy_type].items():
        if prefix:
            out[prefix[:-1]] = FieldInfo(prefix[:-1], "section")
        _walk_model(model, prefix, out)
    return out


# --- compiling a policy document -----------------------------------------------------------------

RuleValue = FieldRule | InstancesRule


@dataclass(frozen=True)
class Compiled:
    """A policy document flattened to paths; itemized fields appear as ``<field>.instances`` and
    ``<field>.attributes.<attribute>``."""

    defaults: dict[str, Any]
    rules: dict[str, RuleValue]
    assets: tuple[ImposedAsset, ...]


def _walk_doc(
    node: Any,
    prefix: str,
    cat: Mapping[str, FieldInfo],
    where: str,
    leaves: dict[str, Any],
    issues: list[Issue],
) -> None:
    if not isinstance(node, dict):
        issues.append(Issue(field=f"{where}.{prefix[:-1]}", details="expected a mapping"))
        return
    for key, value in node.items():
        path = f"{prefix}{key}"
        info = cat.get(path)
        if info is None:
            issues.append(Issue(field=f"{where}.{path}", details="unknown field path"))
        elif info.vtype == "section":
            _walk_doc(value, f"{path}.", cat, where, leaves, issues)
        else:
            leaves[path] = value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _quantity(value: Any) -> Decimal | None:
    if _number(value):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return quantity_to_decimal(value)
        except ValueError:
            return None
    return None


def _value_problem(info: FieldInfo, value: Any) -> str | None:
    """Why ``value`` cannot be a value of this field, or None."""
    vtype = info.vtype
    if vtype == "boolean" and not isinstance(value, bool):
        return f"{value!r} is not a boolean"
    if vtype == "string":
        if not isinstance(value, str):
            return f"{value!r} is not a string"
        if info.choices and value not in info.choices:
            return f"{value!r} is not one of {', '.join(map(str, info.choices))}"
    if vtype == "integer" and not (isinstance(value, int) and not isinstance(value, bool)):
        return f"{value!r} is not an integer"
    if vtype == "number" and not _number(value):
        return f"{value!r} is not a number"
    if vtype == "quantity" and _quantity(value) is None:
        return f"{value!r} is not a quantity (e.g. 8G, 16Gi, 500M)"
    if vtype == "array" and not (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        return f"{value!r} is not a list of strings"
    return None


def _check_rule(
    cat: Mapping[str, FieldInfo], path: str, info: FieldInfo, rule: FieldRule, issues: list[Issue]
) -> None:
    where = f"rules.{path}"
    allowed = ALLOWED_KINDS.get(info.vtype, frozenset())
    set_kinds = {k for k in rule.model_fields_set if getattr(rule, k) is not None} - _META_KINDS
    issues.extend(
        Issue(field=where, details=f"rule {kind!r} is not allowed for a {info.vtype} field")
        for kind in sorted(set_kinds - allowed)
    )
    for bound in ("min", "max"):
        value = getattr(rule, bound)
        if value is None or bound not in allowed:
            continue
        if info.vtype == "quantity" and _quantity(value) is None:
            issues.append(Issue(field=f"{where}.{bound}", details=f"{value!r} is not a quantity"))
        elif info.vtype != "quantity" and not _number(value):
            issues.append(Issue(field=f"{where}.{bound}", details=f"{value!r} is not a number"))
    low, high = _bound(info, rule.min), _bound(info, rule.max)
    if low is not None and high is not None and low > high:
        issues.append(
            Issue(field=where, details=f"min ({rule.min}) is greater than max ({rule.max})")
        )
    if rule.options is not None and "options" in allowed:
        for option in rule.options:
            problem = _value_problem(info, option.value)
            if problem:
                issues.append(Issue(field=f"{where}.options", details=problem))
    if rule.defaultFrom is not None and "defaultFrom" in allowed:
        prefix = path.split(".", 1)[0] + "." if path.startswith(("worker.", "master.")) else ""
        source = rule.defaultFrom.field
        source_info = cat.get(f"{prefix}{source}") or cat.get(source)
        if source_info is None or source_info.vtype not in ("integer", "number", "quantity"):
            issues.append(
                Issue(
                    field=f"{where}.defaultFrom.field",
                    details=f"{source!r} is not a numeric field of the spec",
                )
            )


def _bound(info: FieldInfo, value: Any) -> Decimal | None:
    if value is None:
        return None
    if info.vtype == "quantity":
        return _quantity(value)
    return Decimal(str(value)) if _number(value) else None


def compile_policy(
    policy_type: PolicyType, doc: PolicyDocument, scope: ScopeRef | None = None
) -> tuple[Compiled, list[Issue]]:
    """Flatten and check a policy document; every problem is named by its path."""
    cat = catalog(policy_type)
    issues: list[Issue] = []
    raw_defaults: dict[str, Any] = {}
    raw_rules: dict[str, Any] = {}
    _walk_doc(doc.defaults, "", cat, "defaults", raw_defaults, issues)
    _walk_doc(doc.rules, "", cat, "rules", raw_rules, issues)

    defaults: dict[str, Any] = {}
    for path, value in raw_defaults.items():
        info = cat[path]
        if value is None:
            continue
        if info.vtype == "instances":
            problem = _instances_problem(info, value)
        else:
            problem = _value_problem(info, value)
        if problem:
            issues.append(Issue(field=f"defaults.{path}", details=problem))
        else:
            defaults[path] = value

    rules: dict[str, RuleValue] = {}
    for path, value in raw_rules.items():
        info = cat[path]
        try:
            if info.vtype == "instances":
                rules[path] = InstancesRule.model_validate(value)
                continue
            rule = FieldRule.model_validate(value)
        except ValidationError as exc:
            for error in exc.errors():
                loc = ".".join(str(p) for p in error["loc"])
                field = f"rules.{path}" + (f".{loc}" if loc else "")
                issues.append(Issue(field=field, details=plain(error, field)))
            continue
        _check_rule(cat, path, info, rule, issues)
        if rule.allowOverride and scope is not None and scope.scope == "project":
            issues.append(
                Issue(
                    field=f"rules.{path}.allowOverride",
                    details="only tenant, cluster and department rules can allow overrides",
                )
            )
        rules[path] = rule

    storage_kinds = {
        p.rsplit(".", 1)[-1] for p in cat if p.startswith(("storage.", "worker.storage."))
    }
    for index, asset in enumerate(doc.imposedAssets):
        where = f"imposedAssets[{index}]"
        if asset.kind not in storage_kinds:
            issues.append(
                Issue(field=where, details=f"{policy_type} workloads cannot mount {asset.kind}")
            )
            continue
        model = cat[_storage_path(policy_type, asset.kind)].item_model
        assert model is not None
        try:
            model.model_validate(
                {"name": asset.id, **asset.source} if "name" in model.model_fields else asset.source
            )
        except ValidationError as exc:
            issues.extend(
                Issue(field=f"{where}.source", details=plain(e, f"{where}.source"))
                for e in exc.errors()
            )
    return Compiled(defaults, rules, tuple(doc.imposedAssets)), issues


def _storage_path(policy_type: PolicyType, kind: str) -> str:
    return f"worker.storage.{kind}" if policy_type == "distributed" else f"storage.{kind}"


def _instances_problem(info: FieldInfo, value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        return "expected a list of items"
    assert info.item_model is not None
    known = set(info.item_model.model_fields)
    for item in value:
        if info.key and not item.get(info.key):
            return f"every item needs its {info.key}"
        unknown = set(item) - known
        if unknown:
            return f"unknown attribute {sorted(unknown)[0]!r}"
    return None


def canonical(compiled: Compiled) -> PolicyDocument:
    """The nested form of a compiled policy, as stored and shown."""

    def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path, value in flat.items():
            node = out
            *parents, leaf = path.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return out

    rules = {
        path: rule.model_dump(mode="json", exclude_none=True)
        for path, rule in compiled.rules.items()
    }
    return PolicyDocument(
        defaults=nest(compiled.defaults),
        rules=nest(rules),
        imposedAssets=list(compiled.assets),
    )


def patched(stored: Compiled, patch: Compiled, reset: Iterable[str]) -> Compiled:
    """``stored`` with the ``reset`` paths (and everything below them) cleared, then ``patch``."""
    resets = tuple(reset)

    def kept(path: str) -> bool:
        return not any(path == r or path.startswith(f"{r}.") for r in resets)

    defaults = {p: v for p, v in stored.defaults.items() if kept(p)} | patch.defaults
    rules = {p: v for p, v in stored.rules.items() if kept(p)} | patch.rules
    assets = {a.id: a for a in stored.assets if kept(f"imposedAssets.{a.id}")}
    assets.update({a.id: a for a in patch.assets})
    return Compiled(defaults, rules, tuple(assets.values()))


# --- ownership and merging -------------------------------------------------------------------


@dataclass(frozen=True)
class ScopedPolicy:
    ref: ScopeRef
    compiled: Compiled
    version: int = 0


def _depth(ref: ScopeRef) -> int:
    return SCOPES.index(ref.scope)


def _overridable(rule: RuleValue) -> bool:
    return isinstance(rule, FieldRule) and bool(rule.allowOverride)


def ownership_conflicts(candidate: ScopedPolicy, branch: Iterable[ScopedPolicy]) -> list[Issue]:
    """Rules of ``candidate`` on fields another scope of its branch already rules.

    A field's rule belongs to one scope per branch, as in Run:ai, unless the broader rule says
    ``allowOverride`` (then narrower rules may only tighten it; see ``merge``)."""
    issues: list[Issue] = []
    for other in branch:
        if other.ref == candidate.ref:
            continue
        broader = other if _depth(other.ref) < _depth(candidate.ref) else candidate
        for path in candidate.compiled.rules:
            if path not in other.compiled.rules:
                continue
            if _overridable(broader.compiled.rules[path]):
                continue
            owner = other.ref
            where = "" if owner.scope == "tenant" else f': "{owner.id}"'
            hint = (
                "ask its administrator to free the rule or to set allowOverride on it"
                if broader is other
                else "a narrower scope rules it: remove that rule first"
            )
            issues.append(
                Issue(
                    field=path,
                    details=f'Field "{path}" already has rules in {owner.scope}{where} ({hint})',
                )
            )
    return issues


@dataclass
class RuleEntry:
    path: str
    info: FieldInfo
    rule: FieldRule
    owner: ScopeRef
    # The scope each constraint kind comes from (they differ once a rule was tightened).
    sources: dict[str, ScopeRef] = field(default_factory=dict)
    also: list[ScopeRef] = field(default_factory=list)


@dataclass
class InstancesEntry:
    path: str
    info: FieldInfo
    can_add: bool = True
    can_add_source: ScopeRef | None = None
    locked: dict[str, ScopeRef] = field(default_factory=dict)


@dataclass
class Effective:
    """The merged policy of one branch, ready to evaluate submissions against."""

    policy_type: PolicyType
    branch: list[ScopeRef]
    defaults: dict[str, tuple[Any, ScopeRef]]
    # Default items of itemized fields, by field path then item key.
    items: dict[str, dict[str, tuple[dict[str, Any], ScopeRef]]]
    rules: dict[str, RuleEntry]
    instances: dict[str, InstancesEntry]
    assets: list[tuple[ImposedAsset, ScopeRef]]
    version: int = 0


def _tighter_bound(info: FieldInfo, a: Any, b: Any, kind: str) -> bool:
    """Whether bound ``b`` is tighter than ``a`` for a ``min`` or ``max``."""
    da, db = _bound(info, a), _bound(info, b)
    if da is None or db is None:
        return da is None
    return db > da if kind == "min" else db < da


def _tighten(entry: RuleEntry, rule: FieldRule, source: ScopeRef) -> None:
    current = entry.rule
    update: dict[str, Any] = {}
    if rule.required and not current.required:
        update["required"] = True
        entry.sources["required"] = source
    if rule.canEdit is False and current.canEdit is not False:
        update["canEdit"] = False
        entry.sources["canEdit"] = source
    for kind in ("min", "max"):
        value = getattr(rule, kind)
        if value is not None and _tighter_bound(entry.info, getattr(current, kind), value, kind):
            update[kind] = value
            entry.sources[kind] = source
    if rule.options is not None:
        if current.options is None:
            update["options"] = rule.options
        else:
            allowed = {o.value for o in rule.options}
            update["options"] = [o for o in current.options if o.value in allowed]
        entry.sources["options"] = source
    if rule.step is not None and current.step is None:
        update["step"] = rule.step
        entry.sources["step"] = source
    if rule.defaultFrom is not None:
        update["defaultFrom"] = rule.defaultFrom
        entry.sources["defaultFrom"] = source
    entry.rule = current.model_copy(update=update)
    entry.also.append(source)


def merge(policy_type: PolicyType, policies: Iterable[ScopedPolicy]) -> Effective:
    """Combine a branch's policies: defaults stack (most specific wins), rules keep their owner
    (a narrower rule can only tighten an overridable one), imposed assets are the union."""
    ordered = sorted(policies, key=lambda p: _depth(p.ref))
    cat = catalog(policy_type)
    eff = Effective(policy_type, [p.ref for p in ordered], {}, {}, {}, {}, [])
    seen_assets: set[str] = set()
    for policy in ordered:
        ref = policy.ref
        eff.version = max(eff.version, policy.version)
        for path, value in policy.compiled.defaults.items():
            info = cat[path]
            if info.vtype == "instances":
                field_path = path.removesuffix(".instances")
                items = eff.items.setdefault(field_path, {})
                for item in value:
                    items[str(item.get(info.key or "name"))] = (item, ref)
            else:
                eff.defaults[path] = (value, ref)
        for path, rule in policy.compiled.rules.items():
            info = cat[path]
            if isinstance(rule, InstancesRule):
                entry_i = eff.instances.setdefault(
                    path.removesuffix(".instances"), InstancesEntry(path, info)
                )
                if rule.canAdd is False and entry_i.can_add:
                    entry_i.can_add, entry_i.can_add_source = False, ref
                for key in rule.locked or ():
                    entry_i.locked.setdefault(key, ref)
                continue
            existing = eff.rules.get(path)
            if existing is None:
                sources = {k: ref for k in rule.model_fields_set if getattr(rule, k) is not None}
                eff.rules[path] = RuleEntry(path, info, rule, ref, sources)
            else:
                # Only an overridable rule reaches here legitimately; a conflict that slipped
                # past the save-time check (e.g. a project that moved department) is tightened
                # the same way, so a narrower scope can never loosen a broader rule.
                _tighten(existing, rule, ref)
        for asset in policy.compiled.assets:
            if asset.id not in seen_assets:
                seen_assets.add(asset.id)
                eff.assets.append((asset, ref))
    return eff


def describe(eff: Effective) -> EffectivePolicy:
    """The effective policy with the scope each default and rule comes from."""
    defaults = [
        EffectiveDefault(field=path, value=value, source=source)
        for path, (value, source) in eff.defaults.items()
    ]
    for field_path, items in eff.items.items():
        defaults.extend(
            EffectiveDefault(field=f"{field_path}.instances[{key}]", value=item, source=source)
            for key, (item, source) in items.items()
        )
    rules = [
        EffectiveRule(
            field=path,
            rule=entry.rule.model_dump(mode="json", exclude_none=True),
            source=entry.owner,
            alsoFrom=entry.also,
        )
        for path, entry in eff.rules.items()
    ]
    for field_path, inst in eff.instances.items():
        if inst.can_add_source is not None:
            rules.append(
                EffectiveRule(
                    field=f"{field_path}.instances.canAdd",
                    rule={"canAdd": False},
                    source=inst.can_add_source,
                )
            )
        rules.extend(
            EffectiveRule(
                field=f"{field_path}.instances.locked", rule={"locked": [key]}, source=source
            )
            for key, source in inst.locked.items()
        )
    return EffectivePolicy(
        type=eff.policy_type,
        branch=eff.branch,
        defaults=sorted(defaults, key=lambda d: d.field),
        rules=sorted(rules, key=lambda r: r.field),
        imposedAssets=[EffectiveAsset(asset=a, source=s) for a, s in eff.assets],
        version=eff.version,
    )


# --- evaluation ------------------------------------------------------------------------------


def _get(data: Mapping[str, Any], parts: tuple[str, ...]) -> Any:
    node: Any = data
    for part in parts:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
        if node is None:
            return None
    return node


def _set(data: dict[str, Any], parts: tuple[str, ...], value: Any) -> None:
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def _same(info: FieldInfo, a: Any, b: Any) -> bool:
    if info.vtype == "quantity":
        return _quantity(a) == _quantity(b)
    return bool(a == b)


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
        submitted = _get(part.submitted, parts) or []
        defaults = eff.items.get(field_path, {})
        inst = eff.instances.get(field_path)
        locked = inst.locked if inst else {}
        result: dict[str, dict[str, Any]] = {k: dict(v) for k, (v, _s) in defaults.items()}
        for index, item in enumerate(submitted):
            key = item.get(key_name)
            label = f"{field_path}[{key if key is not None else index}]"
            body = {k: v for k, v in item.items() if k != "exclude"}
            if item.get("exclude"):
                if key in locked and key in defaults:
                    issues.append(
                        _issue(label, "cannot be excluded: the item is locked", locked[key])
                    )
                else:
                    result.pop(key, None)
                continue
            if key is not None and key in defaults:
                default_item = defaults[key][0]
                merged = {**default_item, **body}
                if key in locked and merged != default_item:
                    issues.append(
                        _issue(label, "cannot be changed: the item is locked", locked[key])
                    )
                    continue
                result[key] = merged
                continue
            if inst is not None and not inst.can_add:
                issues.append(
                    _issue(
                        label if key is not None else field_path,
                        "cannot be added: the policy allows only its default items",
                        inst.can_add_source,
                    )
                )
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
            _set(part.spec, parts, items)


def _add_assets(eff: Effective, part: _Part) -> None:
    for asset, _source in eff.assets:
        parts = ("storage", asset.kind)
        current = list(_get(part.spec, parts) or [])
        if any(item.get("name") == asset.id or item.get("id") == asset.id for item in current):
            continue
        model = catalog(eff.policy_type)[f"{part.prefix}storage.{asset.kind}"].item_model
        named = model is not None and "name" in model.model_fields
        current.append({"name": asset.id, **asset.source} if named else dict(asset.source))
        _set(part.spec, parts, current)


def _apply_defaults(eff: Effective, part: _Part) -> None:
    for path, (value, _source) in eff.defaults.items():
        if not path.startswith(part.prefix) or ".attributes." in path:
            continue
        parts = tuple(path[len(part.prefix) :].split("."))
        if _get(part.spec, parts) is None:
            _set(part.spec, parts, copy.deepcopy(value))
    for path, entry in eff.rules.items():
        source = entry.rule.defaultFrom
        if source is None or not path.startswith(part.prefix):
            continue
        parts = tuple(path[len(part.prefix) :].split("."))
        if _get(part.spec, parts) is not None:
            continue
        base = _get(part.spec, tuple(source.field.removeprefix(part.prefix).split(".")))
        amount = _quantity(base) if base is not None else None
        if amount is None:
            continue
        computed = amount * Decimal(str(source.factor))
        if entry.info.vtype == "integer":
            _set(part.spec, parts, int(computed))
        elif entry.info.vtype == "number":
            _set(part.spec, parts, float(computed))
        else:
            _set(part.spec, parts, format(computed.normalize(), "f"))


def _check_value(
    entry: RuleEntry,
    label: str,
    value: Any,
    submitted: Any,
    default: tuple[Any, ScopeRef] | None,
    issues: list[Issue],
) -> None:
    rule, info, sources = entry.rule, entry.info, entry.sources
    if value is None or value == []:
        if rule.required:
            issues.append(_issue(label, "a value is required", sources.get("required")))
        return
    if rule.canEdit is False and submitted is not None:
        if default is None:
            issues.append(
                _issue(
                    label,
                    "cannot be set: the policy does not allow editing it",
                    sources.get("canEdit"),
                )
            )
        elif not _same(info, submitted, default[0]):
            issues.append(
                _issue(
                    label,
                    f"cannot be changed from the policy default {_fmt(default[0])}",
                    sources.get("canEdit"),
                )
            )
    if rule.options is not None:
        allowed = [o.value for o in rule.options]
        if value not in allowed:
            issues.append(
                _issue(
                    label,
                    f"value must be one of: {', '.join(map(_fmt, allowed))}",
                    sources.get("options"),
                )
            )
    if info.vtype in ("integer", "number", "quantity"):
        amount = _quantity(value)
        if amount is None:
            return
        low, high = _bound(info, rule.min), _bound(info, rule.max)
        if low is not None and amount < low:
            issues.append(
                _issue(label, f"value must be no less than {_fmt(rule.min)}", sources.get("min"))
            )
        if high is not None and amount > high:
            issues.append(
                _issue(label, f"value must be no greater than {_fmt(rule.max)}", sources.get("max"))
            )
        if rule.step is not None and info.vtype != "quantity":
            start = low if low is not None else Decimal(0)
            step = Decimal(str(rule.step))
            if (amount - start) % step != 0:
                issues.append(
                    _issue(
                        label,
                        f"value must be {_fmt(rule.min if low is not None else 0)} "
                        f"plus a multiple of {_fmt(rule.step)}",
                        sources.get("step"),
                    )
                )


def _check_rules(eff: Effective, part: _Part, issues: list[Issue]) -> None:
    for path, entry in eff.rules.items():
        if not path.startswith(part.prefix) or ".attributes." in path:
            continue
        parts = tuple(path[len(part.prefix) :].split("."))
        value = _get(part.spec, parts)
        submitted = _get(part.submitted, parts)
        _check_value(entry, path, value, submitted, eff.defaults.get(path), issues)
    # Arrays cannot be edited by default once a policy sets them (Run:ai's ArrayRules).
    cat = catalog(eff.policy_type)
    for path, default in eff.defaults.items():
        if not path.startswith(part.prefix) or cat[path].vtype != "array":
            continue
        explicit = eff.rules.get(path)
        if explicit is not None and explicit.rule.canEdit is not None:
            continue
        submitted = _get(part.submitted, tuple(path[len(part.prefix) :].split(".")))
        if submitted is not None and submitted != default[0]:
            issues.append(
                _issue(
                    path,
                    f"cannot be changed from the policy default {_fmt(default[0])} "
                    "(arrays are not editable unless a rule says canEdit: true)",
                    default[1],
                )
            )


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
    candidate = copy.deepcopy(part.spec)
    for path, default in extra.items():
        _set(candidate, tuple(path.split(".")), default)
    try:
        filled = model.model_validate(candidate)
    except ValidationError:
        # A system default contradicts what the submission chose: leave that one out.
        for path, default in extra.items():
            single = copy.deepcopy(part.spec)
            _set(single, tuple(path.split(".")), default)
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
    for part in parts:
        model = spec_model if part.prefix != "master." else MasterSpec
        try:
            value = model.model_validate(part.spec)
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
    submitted = spec.model_dump(exclude_none=True)
    return submitted, copy.deepcopy(submitted)


def _unique(issues: list[Issue]) -> list[Issue]:
    seen: set[tuple[str, str]] = set()
    out: list[Issue] = []
    for issue in issues:
        if (issue.field, issue.details) not in seen:
            seen.add((issue.field, issue.details))
            out.append(issue)
    return out


def branch_of(
    *, cluster: str | None, department: str | None, project: str | None
) -> list[ScopeRef]:
    """The scopes whose policies apply to a project, broadest first."""
    refs = [ScopeRef(scope="tenant")]
    if cluster:
        refs.append(ScopeRef(scope="cluster", id=cluster))
    if department:
        refs.append(ScopeRef(scope="department", id=department))
    if project:
        refs.append(ScopeRef(scope="project", id=project))
    return refs


def meta_branch(meta: PolicyMeta) -> list[ScopeRef]:
    """The scopes above a policy (and itself), as far as its meta names them."""
    depth = SCOPES.index(meta.scope)
    return branch_of(
        cluster=meta.clusterId if depth >= 1 else None,
        department=meta.departmentId if depth >= 2 else None,
        project=meta.projectId if depth >= 3 else None,
    )
