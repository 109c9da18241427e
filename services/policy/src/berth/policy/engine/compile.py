"""Compiling a policy document: flattened to field paths and checked, every problem named by
its path; and back to the nested form that is stored and shown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from berth.contracts.events import Issue
from berth.contracts.issues import plain
from berth.contracts.policy import (
    FieldRule,
    ImposedAsset,
    InstancesRule,
    PolicyDocument,
    PolicyType,
    ScopeRef,
)
from berth.policy.engine.fields import FieldInfo, catalog, storage_path
from berth.policy.engine.rules import validate_rule
from berth.policy.engine.values import instances_problem, value_problem

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
            problem = instances_problem(info, value)
        else:
            problem = value_problem(info, value)
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
        issues.extend(validate_rule(cat, path, info, rule))
        if rule.allowOverride and scope is not None and scope.scope == "project":
            issues.append(
                Issue(
                    field=f"rules.{path}.allowOverride",
                    details="only tenant, cluster and department rules can allow overrides",
                )
            )
        rules[path] = rule

    issues.extend(_asset_issues(policy_type, doc.imposedAssets, cat))
    return Compiled(defaults, rules, tuple(doc.imposedAssets)), issues


def _asset_issues(
    policy_type: PolicyType, assets: Iterable[ImposedAsset], cat: Mapping[str, FieldInfo]
) -> list[Issue]:
    issues: list[Issue] = []
    storage_kinds = {
        p.rsplit(".", 1)[-1] for p in cat if p.startswith(("storage.", "worker.storage."))
    }
    for index, asset in enumerate(assets):
        where = f"imposedAssets[{index}]"
        if asset.kind not in storage_kinds:
            issues.append(
                Issue(field=where, details=f"{policy_type} workloads cannot mount {asset.kind}")
            )
            continue
        model = cat[storage_path(policy_type, asset.kind)].item_model
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
    return issues


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
