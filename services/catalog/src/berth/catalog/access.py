"""The catalog's side of access rules: it owns them (create, list, delete; the bootstrap
administrator and demo rules) and enforces them on the organisation and assets. The decisions are
``berth.contracts.access``'s; this module gives them the catalog's organisation tree."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from berth.catalog.store import CatalogStore
from berth.contracts.access import (
    ASSET_RESOURCE,
    TENANT,
    AccessRule,
    AccessRuleCreatedV1,
    AccessRuleCreateRequest,
    AccessRuleDeletedV1,
    AccessRuleListRequest,
    Action,
    OrgTree,
    Role,
    Scope,
    grant_refusal,
    holds,
    project_path,
    refusal,
    role_named,
    rule_id,
)
from berth.contracts.envelope import Actor

SOURCE = "/berth/catalog"

ADMIN_ROLE = "System administrator"
# A fresh install's demo rules, so both sides of a decision can be shown.
DEMO_RULES: tuple[tuple[str, str, str], ...] = (
    ("alice@example.com", "L1 researcher", "team-a"),
    ("bob@example.com", "L1 researcher", "team-b"),
)


class Refused(Exception):
    """A refused access-rule change; the message says who, what and why."""


def new_rule(
    *,
    subject: str,
    subject_type: str,
    role: Role,
    scope: Scope,
    cluster_id: str | None,
    by: str,
    at: datetime | None = None,
) -> AccessRule:
    return AccessRule(
        id=rule_id(subject_type, subject, role, scope),
        subjectId=subject,
        subjectType=subject_type,  # type: ignore[arg-type]
        roleId=role.id,
        roleName=role.name,
        scopeType=scope[0],  # type: ignore[arg-type]
        scopeId=scope[1],
        scopeName=scope[1],
        clusterId=cluster_id,
        createdAt=at or datetime.now(UTC),
        createdBy=by,
    )


def created(rule: AccessRule, actor: Actor) -> AccessRuleCreatedV1:
    return AccessRuleCreatedV1(source=SOURCE, subject=rule.id, actor=actor, data=rule)


async def _scope_of(db: CatalogStore, scope_type: str, scope_id: str) -> Scope:
    if scope_type == "tenant":
        if scope_id:
            raise Refused("the tenant scope takes no scope name")
        return TENANT
    if not scope_id:
        raise Refused(f"a {scope_type} scope needs a name (--scope-name)")
    if scope_type in ("department", "project") and not await db.org_exists(scope_type, scope_id):
        raise Refused(f'{scope_type} "{scope_id}" does not exist')
    return (scope_type, scope_id)


def _cluster_of(path: Sequence[Scope]) -> str | None:
    return next((name for kind, name in path if kind == "cluster"), None)


async def create_rule(db: CatalogStore, request: AccessRuleCreateRequest) -> AccessRule:
    actor = request.actor
    role = role_named(request.roleName or str(request.roleId or ""))
    if role is None or (request.roleId is not None and role.id != request.roleId):
        raise Refused(f'no role "{request.roleName or request.roleId}" (see berth role list)')
    tree = await db.org_tree()
    scope = await _scope_of(db, request.scopeType, request.scopeId)
    path = tree.path(scope)
    rules = await db.access_rules()
    if actor is None:
        raise Refused("forbidden: an anonymous caller may not grant roles (no identity)")
    if problem := grant_refusal(actor, role, path, rules):
        raise Refused(problem)
    rule = new_rule(
        subject=request.subjectId,
        subject_type=request.subjectType,
        role=role,
        scope=scope,
        cluster_id=_cluster_of(path),
        by=actor.email,
    )
    if any(r.id == rule.id for r in rules):
        raise Refused(
            f"{request.subjectId} is already {role.name} in "
            f"{'the tenant' if scope == TENANT else ' '.join(scope)}"
        )
    await db.record_created([rule])
    return rule


async def delete_rule(db: CatalogStore, rule_id_: str, actor: Actor | None) -> AccessRule:
    rules = await db.access_rules()
    rule = next((r for r in rules if r.id == rule_id_), None)
    if rule is None:
        raise Refused(f'no access rule "{rule_id_}"')
    tree = await db.org_tree()
    path = tree.path(rule.scope)
    if problem := refusal(actor, "delete", "access-rules", "delete", path, rules):
        raise Refused(problem)
    await db.record_deleted([rule])
    return rule


async def list_rules(db: CatalogStore, request: AccessRuleListRequest) -> list[AccessRule]:
    """The rules in scopes where the caller may read access rules, and the caller's own."""
    actor = request.actor
    if actor is None:
        raise Refused("forbidden: an anonymous caller may not list access rules (no identity)")
    rules = await db.access_rules()
    tree = await db.org_tree()
    visible = [
        r
        for r in rules
        if holds(actor, "access-rules.read", tree.path(r.scope), rules)
        or (r.subjectType == "user" and r.subjectId.lower() == actor.email.lower())
        or (r.subjectType == "group" and r.subjectId in actor.groups)
    ]
    return sorted(
        (
            r
            for r in visible
            if (request.subjectType is None or r.subjectType == request.subjectType)
            and (not request.subjectIds or r.subjectId in request.subjectIds)
            and (request.scopeType is None or r.scopeType == request.scopeType)
            and (request.scopeId is None or r.scopeId == request.scopeId)
        ),
        key=lambda r: (r.scopeType != "tenant", r.scopeType, r.scopeId, r.subjectId, r.roleId),
    )


async def bootstrap(
    db: CatalogStore, *, admin: str | None, demo: bool, cluster_id: str
) -> list[AccessRuleCreatedV1]:
    """The administrator (System administrator at the tenant) and, with the demo catalog, the
    demo rules; each only when missing. An event for each rule made."""
    by = "system:catalog"
    wanted: list[AccessRule] = []
    admin_role = role_named(ADMIN_ROLE)
    assert admin_role is not None
    if admin:
        wanted.append(
            new_rule(
                subject=admin,
                subject_type="user",
                role=admin_role,
                scope=TENANT,
                cluster_id=None,
                by=by,
            )
        )
    if demo:
        for subject, role_name, project in DEMO_RULES:
            role = role_named(role_name)
            assert role is not None
            if await db.org_exists("project", project):
                wanted.append(
                    new_rule(
                        subject=subject,
                        subject_type="user",
                        role=role,
                        scope=("project", project),
                        cluster_id=cluster_id,
                        by=by,
                    )
                )
    known = {r.id for r in await db.all_access_rules()}
    fresh = [r for r in wanted if r.id not in known]
    await db.record_created(fresh)
    return [created(r, Actor.system("catalog")) for r in fresh]


# --- the organisation and assets -------------------------------------------------------------


def asset_path(
    kind: str,
    name: str,
    scope: str,
    scope_name: str,
    spec: dict[str, Any],
    tree: OrgTree,
    cluster_id: str,
) -> tuple[Scope, ...]:
    """Where an organisation unit or asset lives: the scope a rule must cover to change it."""
    if kind == "project":
        department, cluster = tree.projects.get(name, (None, None))
        return project_path(
            name,
            spec.get("department") or department,
            spec.get("clusterId") or cluster or cluster_id,
        )
    if kind == "department":
        cluster = spec.get("clusterId") or tree.departments.get(name) or cluster_id
        return (TENANT, ("cluster", cluster), ("department", name))
    if kind == "nodepool":
        return (TENANT, ("cluster", spec.get("clusterId") or cluster_id))
    return tree.path((scope, scope_name if scope != "tenant" else ""))


async def asset_refusal(
    db: CatalogStore,
    actor: Actor | None,
    action: Action,
    kind: str,
    name: str,
    scope: str,
    scope_name: str,
    spec: dict[str, Any],
    cluster_id: str,
) -> str | None:
    tree = await db.org_tree()
    path = asset_path(kind, name, scope, scope_name, spec, tree, cluster_id)
    return refusal(actor, action, ASSET_RESOURCE[kind], action, path, await db.access_rules())


def deleted(rule: AccessRule, actor: Actor) -> AccessRuleDeletedV1:
    return AccessRuleDeletedV1(source=SOURCE, subject=rule.id, actor=actor, data=rule)
