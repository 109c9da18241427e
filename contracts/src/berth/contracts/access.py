"""Who may do what, where: roles, access rules and the one permission matrix, shaped like Run:ai's.

An **access rule** says "*subject* is a *role* in *scope*": a user (by email), an identity
provider group or an application; one of the built-in roles below; a node of the organisation
tree tenant > cluster > department > project. A rule covers its scope and everything below it
(a rule at a department covers its projects); nothing is inherited upward, there are no deny
rules, and permissions are the union of every rule that matches the caller.

A **role** is a set of permissions, each an action (create, read, update, delete) on a
resource type. The matrix (``MATRIX``) is the one place that says which role holds which; the
README table, ``berth role list`` and the tests are derived from it. Workloads are checked per
kind, as Run:ai does (``workspaces``, ``trainings`` for single-node and distributed, and
``inferences``); suspend and resume need ``update``; lists, ``describe`` and ``trace`` need
``workloads.read``.

The catalog owns the rules (``rpc.catalog.access-rules.*``) and announces every change
(``AccessRuleCreatedV1``/``AccessRuleDeletedV1``); each enforcing service keeps its own copy of
them and decides with ``refusal`` here, a pure function of the caller, the rules and where the
object lives in the organisation tree.
"""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from berth.contracts.envelope import Actor, Event
from berth.contracts.events import Data
from berth.contracts.queries import Query
from berth.contracts.roles import CATALOG, CLUSTER_SYNC, INTAKE, OWNERSHIP, POLICY, UI, Consumer

Action = Literal["create", "read", "update", "delete"]
ACTIONS: tuple[Action, ...] = ("create", "read", "update", "delete")
ScopeType = Literal["tenant", "cluster", "department", "project"]
SCOPE_TYPES: tuple[ScopeType, ...] = ("tenant", "cluster", "department", "project")
# Run:ai's subject types; ``app`` is an application (a machine identity with a client secret).
SubjectType = Literal["user", "group", "app"]
SUBJECT_TYPES: tuple[SubjectType, ...] = ("user", "group", "app")

# A node of the organisation tree: ("project", "team-a"); the tenant is ("tenant", "").
Scope = tuple[str, str]
TENANT: Scope = ("tenant", "")


@dataclass(frozen=True)
class Role:
    id: int
    name: str
    short: str  # the matrix column heading
    description: str


# Ids as Run:ai's predefined roles have them (look roles up by name; ids are for the API shape).
ROLES: tuple[Role, ...] = (
    Role(1, "System administrator", "SysAdm", "Everything, everywhere."),
    Role(
        1710,
        "Department administrator",
        "DepAdm",
        "Projects, workloads, assets, policies and access rules in its departments.",
    ),
    Role(3, "Editor", "Editor", "Manages departments, projects, workloads, assets and policies."),
    Role(
        4,
        "Research manager",
        "ResMgr",
        "Manages projects, access rules and assets; runs workspaces and trainings.",
    ),
    Role(
        5, "L1 researcher", "L1", "Runs workspaces and trainings, manages assets; reads the rest."
    ),
    Role(8, "L2 researcher", "L2", "Runs workspaces and trainings; reads assets."),
    Role(6, "ML engineer", "MLEng", "Runs inference; reads the organisation and workloads."),
    Role(7, "Viewer", "Viewer", "Reads almost everything."),
    Role(13, "Department viewer", "DepView", "Like Viewer, without node pools and credentials."),
)

# Resource type -> what it covers, in the matrix's row order.
RESOURCES: dict[str, str] = {
    "clusters": "registered clusters (berth cluster list)",
    "cluster-config": "a cluster's settings (berth cluster config set)",
    "nodepools": "node pools",
    "departments": "departments",
    "projects": "projects and their quotas",
    "policies": "workload policies",
    "applications": "applications (machine identities)",
    "roles": "the roles (this matrix)",
    "access-rules": "access rules",
    "workloads": "every workload: list, describe, trace",
    "workspaces": "workspaces: submit, suspend/resume (update), delete",
    "trainings": "trainings, single-node and distributed",
    "inferences": "inference services",
    "environments": "environment assets",
    "data-sources": "data source assets",
    "compute-resources": "compute resource assets",
    "templates": "workload templates",
    "credentials": "credential assets",
}

# The matrix, from Run:ai's captured 2.18 roles (its ``*-assets`` row is berth's data-sources).
# C R U D = create, read, update, delete; - = nothing.
_MATRIX_TEXT = """
clusters            CRUD  R    R    R    R    R    R    R    R
cluster-config      CRUD  -    -    -    -    -    -    -    -
nodepools           CRUD  R    R    R    R    R    R    R    -
departments         CRUD  R    CRUD R    -    -    R    R    R
projects            CRUD  CRUD CRUD CRUD R    R    R    R    R
policies            CRUD  CRUD CRUD R    R    R    R    R    R
applications        CRUD  R    R    -    -    -    -    -    -
roles               R     R    R    R    -    -    -    -    -
access-rules        CRUD  CRUD CRUD CRUD -    -    -    -    -
workloads           CRUD  CRUD CRUD R    CRUD CRUD R    R    R
workspaces          CRUD  CRUD CRUD CRUD CRUD CRUD R    R    R
trainings           CRUD  CRUD CRUD CRUD CRUD CRUD -    R    R
inferences          CRUD  CRUD R    R    R    -    CRUD R    R
environments        CRUD  CRUD CRUD CRUD CRUD R    -    R    R
data-sources        CRUD  CRUD CRUD CRUD CRUD R    -    R    R
compute-resources   CRUD  CRUD CRUD CRUD CRUD R    -    R    R
templates           CRUD  CRUD CRUD CRUD CRUD R    -    R    R
credentials         CRUD  CRUD CRUD R    CRUD R    R    R    -
"""

_LETTERS: dict[str, Action] = {"C": "create", "R": "read", "U": "update", "D": "delete"}


def _parse(text: str) -> dict[str, dict[str, frozenset[Action]]]:
    matrix: dict[str, dict[str, frozenset[Action]]] = {}
    for line in text.strip().splitlines():
        resource, *cells = line.split()
        assert resource in RESOURCES and len(cells) == len(ROLES), line
        matrix[resource] = {
            role.name: frozenset(_LETTERS[c] for c in cell if c != "-")
            for role, cell in zip(ROLES, cells, strict=True)
        }
    assert list(matrix) == list(RESOURCES)
    return matrix


# resource -> role name -> actions.
MATRIX: dict[str, dict[str, frozenset[Action]]] = _parse(_MATRIX_TEXT)


def role_named(name: str) -> Role | None:
    """A role by name (any case) or id."""
    for role in ROLES:
        if name.lower() in (role.name.lower(), role.short.lower(), str(role.id)):
            return role
    return None


def permissions_of(role: str) -> frozenset[str]:
    """``resource.action`` strings a role holds."""
    return frozenset(
        f"{resource}.{action}" for resource, row in MATRIX.items() for action in row.get(role, ())
    )


# Workload kind -> the resource type its submissions and actions are checked against.
KIND_RESOURCE: dict[str, str] = {
    "workspace": "workspaces",
    "training": "trainings",
    "distributed": "trainings",
    "inference": "inferences",
}
# Catalog asset kind -> resource type.
ASSET_RESOURCE: dict[str, str] = {
    "department": "departments",
    "project": "projects",
    "nodepool": "nodepools",
    "environment": "environments",
    "compute": "compute-resources",
    "datasource": "data-sources",
    "credential": "credentials",
    "template": "templates",
}


# --- rules -------------------------------------------------------------------------------------


class AccessRule(Data):
    """Run:ai's ``AccessRule``: one subject, one role, one scope. Scopes are named by name
    (berth's departments and projects are unique by name); ``scopeId`` = ``scopeName``, empty
    for the tenant."""

    id: str = Field(description="The rule's id; also the subject id of its events.")
    subjectId: str = Field(min_length=1, description="User email, group name or application.")
    subjectType: SubjectType
    roleId: int
    roleName: str
    scopeType: ScopeType
    scopeId: str = ""
    scopeName: str = ""
    clusterId: str | None = Field(default=None, description="The cluster the scope is in.")
    createdAt: AwareDatetime
    createdBy: str = Field(description="Who granted it.")

    @property
    def scope(self) -> Scope:
        return (self.scopeType, "" if self.scopeType == "tenant" else self.scopeId)


def subject_matches(rule: AccessRule, actor: Actor) -> bool:
    if rule.subjectType == "group":
        return rule.subjectId in actor.groups
    # Users and applications are both named by the identity the verified token gives.
    return rule.subjectId.lower() == actor.email.lower()


@dataclass(frozen=True)
class OrgTree:
    """Where each project and department sits: project -> (department, cluster), department ->
    cluster. Each enforcing service builds it from what it knows of the catalog."""

    projects: Mapping[str, tuple[str | None, str | None]]
    departments: Mapping[str, str | None]

    def path(self, scope: Scope) -> tuple[Scope, ...]:
        """The scope and its ancestors, tenant first."""
        kind, name = scope
        if kind == "project":
            department, cluster = self.projects.get(name, (None, None))
            return project_path(name, department, cluster)
        if kind == "department":
            return _path(TENANT, ("cluster", self.departments.get(name)), ("department", name))
        if kind == "cluster":
            return (TENANT, ("cluster", name))
        return (TENANT,)


EMPTY_TREE = OrgTree({}, {})


def _path(*scopes: tuple[str, str | None]) -> tuple[Scope, ...]:
    return tuple((kind, name) for kind, name in scopes if name is not None)


def project_path(project: str, department: str | None, cluster: str | None) -> tuple[Scope, ...]:
    """A project's scope and its ancestors, from what a workload or project record carries."""
    return _path(
        TENANT, ("cluster", cluster or None), ("department", department), ("project", project)
    )


def holds(
    actor: Actor, permission: str, path: Sequence[Scope], rules: Iterable[AccessRule]
) -> bool:
    """Whether a rule at any scope of ``path`` (an object's scope and its ancestors) gives
    ``actor`` the ``resource.action`` permission."""
    resource, action = permission.rsplit(".", 1)
    row = MATRIX[resource]
    where = set(path)
    return any(
        rule.scope in where
        and action in row.get(rule.roleName, ())
        and subject_matches(rule, actor)
        for rule in rules
    )


def describe_scope(scope: Scope) -> str:
    kind, name = scope
    return "the tenant" if kind == "tenant" else f"{kind} {name}"


def refusal(
    actor: Actor | None,
    verb: str,
    resource: str,
    action: Action,
    path: Sequence[Scope],
    rules: Iterable[AccessRule],
) -> str | None:
    """Why ``actor`` may not ``verb`` ``resource`` at the last scope of ``path``, or None when
    a rule allows it: ``forbidden: bob@example.com may not delete trainings in project team-a
    (no access rule grants trainings.delete there)``."""
    permission = f"{resource}.{action}"
    where = describe_scope(path[-1]) if path else "the tenant"
    if actor is None:
        return f"forbidden: an anonymous caller may not {verb} {resource} in {where} (no identity)"
    if holds(actor, permission, path, rules):
        return None
    return (
        f"forbidden: {actor.email} may not {verb} {resource} in {where} "
        f"(no access rule grants {permission} there)"
    )


def readable_projects(
    actor: Actor, resource: str, rules: Iterable[AccessRule], tree: OrgTree
) -> set[str] | None:
    """The projects whose ``resource`` ``actor`` may read; None means every project (a rule
    at the tenant, or a caller reading everywhere), so a list can filter in its query."""
    granting = [
        r
        for r in rules
        if "read" in MATRIX[resource].get(r.roleName, ()) and subject_matches(r, actor)
    ]
    if any(r.scopeType == "tenant" for r in granting):
        return None
    scopes = {r.scope for r in granting}
    return {
        project for project in tree.projects if scopes.intersection(tree.path(("project", project)))
    }


def grant_refusal(
    actor: Actor, role: Role, path: Sequence[Scope], rules: Iterable[AccessRule]
) -> str | None:
    """A grantor needs ``access-rules.create`` at the scope and may grant only what it holds
    there itself (no one makes someone else more powerful than they are)."""
    rules = list(rules)
    if problem := refusal(actor, "grant", "access-rules", "create", path, rules):
        return problem
    missing = sorted(p for p in permissions_of(role.name) if not holds(actor, p, path, rules))
    if missing:
        where = describe_scope(path[-1])
        return (
            f"forbidden: {actor.email} may not grant {role.name} in {where} "
            f"(it would give {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}, "
            f"which {actor.email} does not hold there)"
        )
    return None


# --- rendering -------------------------------------------------------------------------------


def _cell(actions: frozenset[Action]) -> str:
    return "".join(a[0].upper() for a in ACTIONS if a in actions) or "-"


def matrix_rows() -> list[list[str]]:
    """Header then one row per resource: resource, then each role's letters."""
    rows = [["resource", *(r.short for r in ROLES)]]
    rows += [[resource, *(_cell(row[r.name]) for r in ROLES)] for resource, row in MATRIX.items()]
    return rows


def matrix_text() -> str:
    """The matrix as ``berth role list`` prints it (fits 80 columns), with the role legend."""
    rows = matrix_rows()
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    legend = [
        textwrap.fill(
            f"{r.short:<8}{r.name} (id {r.id}): {r.description}", 80, subsequent_indent=" " * 8
        )
        for r in ROLES
    ]
    return "\n".join([*lines, "", "C create  R read  U update (suspend/resume)  D delete", *legend])


def markdown_matrix() -> str:
    """The matrix as the README shows it."""
    rows = matrix_rows()
    header = ["resource", *(f"{r.name}" for r in ROLES)]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join([f"`{r[0]}`", *r[1:]]) + " |" for r in rows[1:]]
    return "\n".join(out)


# --- events ------------------------------------------------------------------------------------

# Services that enforce access rules, each keeping its own copy of them.
_ENFORCERS = (
    Consumer((INTAKE,), "intake-access-rules-{change}"),
    Consumer((POLICY,), "policy-access-rules-{change}"),
    Consumer((OWNERSHIP,), "ownership-access-rules-{change}"),
    Consumer((CLUSTER_SYNC,), "cluster-sync-access-rules-{change}"),
)


def _consumers(change: str) -> tuple[Consumer, ...]:
    return (
        *(Consumer(c.roles, (c.durable or "").format(change=change)) for c in _ENFORCERS),
        Consumer((UI,)),
    )


class AccessRuleCreatedV1(Event):
    """The catalog recorded an access rule; subject = the rule id."""

    TYPE: ClassVar[str] = "berth.catalog.access-rule-created"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (CATALOG,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = _consumers("created")
    data: AccessRule


class AccessRuleDeletedV1(Event):
    """The catalog deleted an access rule (rules are never edited: delete one, create
    another); subject = the rule id."""

    TYPE: ClassVar[str] = "berth.catalog.access-rule-deleted"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (CATALOG,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = _consumers("deleted")
    data: AccessRule


# --- request-reply -----------------------------------------------------------------------------


class AccessRuleCreateRequest(Query):
    """Run:ai's access-rule creation fields; the role by id or by name."""

    actor: Actor | None = Field(default=None, description="The caller (set from its token).")
    subjectId: str = Field(min_length=1)
    subjectType: SubjectType = "user"
    roleId: int | None = None
    roleName: str | None = None
    scopeType: ScopeType = "tenant"
    scopeId: str = Field(default="", description="Cluster, department or project name.")


class AccessRuleDeleteRequest(Query):
    actor: Actor | None = None
    id: str = Field(min_length=1)


class AccessRuleListRequest(Query):
    actor: Actor | None = None
    subjectType: SubjectType | None = None
    subjectIds: list[str] | None = None
    scopeType: ScopeType | None = None
    scopeId: str | None = None


class AccessRuleReply(Query):
    accessRule: AccessRule | None = None
    error: str | None = None


class AccessRuleListReply(Query):
    totalRecords: int = 0
    displayRecords: int = 0
    accessRules: list[AccessRule] = Field(default_factory=list)
    error: str | None = None


def rule_id(subject_type: str, subject: str, role: Role, scope: Scope) -> str:
    """A rule's id, the same for the same grant (granting it again is refused by name); one
    NATS token."""
    digest = hashlib.sha256(f"{subject_type}|{subject.lower()}|{role.id}|{scope}".encode())
    return f"ar-{digest.hexdigest()[:16]}"
