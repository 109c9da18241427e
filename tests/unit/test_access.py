"""The permission matrix and the evaluator every enforcing service decides with."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.contracts.access import (
    MATRIX,
    RESOURCES,
    ROLES,
    TENANT,
    OrgTree,
    grant_refusal,
    holds,
    markdown_matrix,
    matrix_text,
    permissions_of,
    project_path,
    readable_projects,
    refusal,
    role_named,
)
from berth.contracts.envelope import Actor
from tests.unit.access_builders import rule

ROOT = Path(__file__).resolve().parents[2]
BOB = Actor(email="bob@example.com")
ALICE = Actor(email="alice@example.com", groups=("ml-team",))
TREE = OrgTree(
    projects={
        "team-a": ("research", "local"),
        "team-b": ("research", "local"),
        "solo": (None, "edge"),
    },
    departments={"research": "local"},
)
TEAM_A = TREE.path(("project", "team-a"))


def test_the_readme_shows_the_matrix() -> None:
    assert markdown_matrix() in (ROOT / "README.md").read_text()


def test_role_list_fits_80_columns_and_names_every_role_and_resource() -> None:
    text = matrix_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for role in ROLES:
        assert role.name in text
    for resource in RESOURCES:
        assert resource in text


def test_the_required_roles_exist_and_are_found_by_name_short_name_or_id() -> None:
    for name in (
        "System administrator",
        "Department administrator",
        "Editor",
        "Research manager",
        "L1 researcher",
        "ML engineer",
        "Viewer",
    ):
        role = role_named(name)
        assert role is not None and role.name == name
    assert role_named("l1") == role_named("5") == role_named("L1 researcher")
    assert role_named("nobody") is None


def test_the_system_administrator_holds_everything_else_holds_a_subset() -> None:
    every = permissions_of("System administrator")
    assert {"cluster-config.update", "access-rules.create", "trainings.delete"} <= every
    for role in ROLES:
        assert permissions_of(role.name) <= every | {"roles.read"}


# One case per role and resource: the matrix decides, at the project, its department, the
# tenant, and nowhere else (a rule in team-b never covers team-a).
CASES = [
    (role.name, resource, action)
    for role in ROLES
    for resource in RESOURCES
    for action in ("create", "read", "update", "delete")
]


@pytest.mark.parametrize(("role", "resource", "action"), CASES)
def test_a_rule_covers_its_scope_and_below_never_beside(
    role: str, resource: str, action: str
) -> None:
    granted = action in MATRIX[resource][role]
    permission = f"{resource}.{action}"
    for scope in (("project", "team-a"), ("department", "research"), TENANT, ("cluster", "local")):
        assert holds(BOB, permission, TEAM_A, [rule(BOB.email, role, *scope)]) is granted
    assert not holds(BOB, permission, TEAM_A, [rule(BOB.email, role, "project", "team-b")])
    # Nothing is inherited upward: a project rule does not reach its department.
    assert not holds(
        BOB,
        permission,
        TREE.path(("department", "research")),
        [rule(BOB.email, role, "project", "team-a")],
    )


def test_a_denial_names_who_what_where_and_why() -> None:
    rules = [rule(BOB.email, "L1 researcher", "project", "team-b")]
    assert refusal(BOB, "delete", "trainings", "delete", TEAM_A, rules) == (
        "forbidden: bob@example.com may not delete trainings in project team-a "
        "(no access rule grants trainings.delete there)"
    )
    assert (
        refusal(BOB, "delete", "trainings", "delete", TREE.path(("project", "team-b")), rules)
        is None
    )


def test_no_identity_is_refused_not_treated_as_an_administrator() -> None:
    problem = refusal(
        None, "read", "workloads", "read", TEAM_A, [rule("x", "System administrator")]
    )
    assert problem is not None and "anonymous" in problem


def test_groups_and_emails_match_their_rules_only() -> None:
    assert holds(
        ALICE, "trainings.create", TEAM_A, [rule("ml-team", "L1 researcher", subject_type="group")]
    )
    assert not holds(
        BOB, "trainings.create", TEAM_A, [rule("ml-team", "L1 researcher", subject_type="group")]
    )
    # A group rule does not match a user of the same name, nor the other way round.
    assert not holds(ALICE, "trainings.create", TEAM_A, [rule("ml-team", "L1 researcher")])
    assert holds(
        Actor(email="Bob@Example.com"),
        "trainings.create",
        TEAM_A,
        [rule(BOB.email, "L1 researcher")],
    )


def test_workload_kinds_follow_runai_ml_engineers_serve_and_l1_researchers_train() -> None:
    mle = [rule(BOB.email, "ML engineer")]
    assert holds(BOB, "inferences.create", TEAM_A, mle)
    assert not holds(BOB, "trainings.create", TEAM_A, mle)
    l1 = [rule(BOB.email, "L1 researcher")]
    assert holds(BOB, "trainings.update", TEAM_A, l1)
    assert not holds(BOB, "inferences.update", TEAM_A, l1)


def test_readable_projects_are_the_subtrees_of_the_reading_rules() -> None:
    assert readable_projects(BOB, "workloads", [rule(BOB.email, "Viewer")], TREE) is None
    department = [rule(BOB.email, "Viewer", "department", "research")]
    assert readable_projects(BOB, "workloads", department, TREE) == {"team-a", "team-b"}
    project = [rule(BOB.email, "L1 researcher", "project", "team-b")]
    assert readable_projects(BOB, "workloads", project, TREE) == {"team-b"}
    cluster = [rule(BOB.email, "Viewer", "cluster", "edge")]
    assert readable_projects(BOB, "workloads", cluster, TREE) == {"solo"}
    assert readable_projects(BOB, "workloads", [], TREE) == set()


def test_a_grantor_grants_only_where_it_may_and_only_what_it_holds() -> None:
    role = role_named("L1 researcher")
    admin = role_named("System administrator")
    assert role is not None and admin is not None
    depadm = [rule(BOB.email, "Department administrator", "department", "research")]
    assert grant_refusal(BOB, role, TEAM_A, depadm) is None
    assert grant_refusal(BOB, role, (TENANT,), depadm) is not None
    problem = grant_refusal(BOB, admin, TEAM_A, depadm)
    assert problem is not None and "may not grant System administrator" in problem


def test_paths_skip_what_is_unknown() -> None:
    assert project_path("p", None, None) == (TENANT, ("project", "p"))
    assert TREE.path(("project", "nowhere")) == (TENANT, ("project", "nowhere"))
    assert TREE.path(("department", "research")) == (
        TENANT,
        ("cluster", "local"),
        ("department", "research"),
    )
