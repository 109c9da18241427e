"""Combining the policies of a branch (tenant → cluster → department → project): who owns each
rule, the effective policy a submission is evaluated against, and how it is described."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from berth.contracts.events import Issue
from berth.contracts.policy import (
    SCOPES,
    EffectiveAsset,
    EffectiveDefault,
    EffectivePolicy,
    EffectiveRule,
    FieldRule,
    ImposedAsset,
    InstancesRule,
    PolicyMeta,
    PolicyType,
    ScopeRef,
)
from berth.policy.engine.compile import Compiled, RuleValue
from berth.policy.engine.fields import FieldInfo, catalog
from berth.policy.engine.rules import (
    INSTANCES_KINDS,
    Check,
    InstancesKind,
    Objection,
    prepare_checks,
    tighten_instances,
    tighten_rule,
)


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
    _checks: tuple[Check, ...] | None = field(default=None, repr=False, compare=False)

    def tighten(self, rule: FieldRule, source: ScopeRef) -> None:
        """A narrower scope's rule on this field: the effective rule only gets tighter."""
        self.rule, owned = tighten_rule(self.rule, rule, self.info)
        self.sources.update(dict.fromkeys(owned, source))
        self.also.append(source)
        self._checks = None

    @property
    def checks(self) -> tuple[Check, ...]:
        if self._checks is None:
            self._checks = prepare_checks(self.rule, self.info)
        return self._checks


@dataclass
class InstancesEntry:
    """The effective rules on an itemized field's items: each instances kind's state."""

    path: str
    info: FieldInfo
    state: dict[str, Any] = field(default_factory=dict)

    def tighten(self, rule: InstancesRule, source: ScopeRef) -> None:
        self.state = tighten_instances(self.state, rule, source)

    def excluding(self, key: Any, is_default: bool) -> Objection | None:
        """Why a submission may not exclude the item ``key``, or None."""
        return self._first(lambda kind, state: kind.excluding(state, key, is_default))

    def changing(self, key: Any, changed: bool) -> Objection | None:
        """Why a submission may not change the default item ``key``, or None."""
        return self._first(lambda kind, state: kind.changing(state, key, changed))

    def adding(self) -> Objection | None:
        """Why a submission may not add an item, or None."""
        return self._first(lambda kind, state: kind.adding(state))

    def _first(self, ask: Callable[[InstancesKind, Any], Objection | None]) -> Objection | None:
        for kind in INSTANCES_KINDS:
            if kind.name in self.state:
                objection = ask(kind, self.state[kind.name])
                if objection is not None:
                    return objection
        return None


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
                eff.instances.setdefault(
                    path.removesuffix(".instances"), InstancesEntry(path, info)
                ).tighten(rule, ref)
                continue
            existing = eff.rules.get(path)
            if existing is None:
                sources = {k: ref for k in rule.model_fields_set if getattr(rule, k) is not None}
                eff.rules[path] = RuleEntry(path, info, rule, ref, sources)
            else:
                # Only an overridable rule reaches here legitimately; a conflict that slipped
                # past the save-time check (e.g. a project that moved department) is tightened
                # the same way, so a narrower scope can never loosen a broader rule.
                existing.tighten(rule, ref)
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
        for kind in INSTANCES_KINDS:
            if kind.name in inst.state:
                rules.extend(
                    EffectiveRule(
                        field=f"{field_path}.instances.{kind.name}", rule=rule, source=source
                    )
                    for rule, source in kind.describe(inst.state[kind.name])
                )
    return EffectivePolicy(
        type=eff.policy_type,
        branch=eff.branch,
        defaults=sorted(defaults, key=lambda d: d.field),
        rules=sorted(rules, key=lambda r: r.field),
        imposedAssets=[EffectiveAsset(asset=a, source=s) for a, s in eff.assets],
        version=eff.version,
    )


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
