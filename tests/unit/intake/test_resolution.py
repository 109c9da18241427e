"""Building a submission from a template and assets: scope visibility, merge order, and every
named rejection."""

from __future__ import annotations

from typing import Any

import pytest

from berth.contracts.catalog import AssetView, project_scopes, validate_spec, visible_to
from berth.contracts.events import Issue
from berth.intake import resolution
from berth.intake.resolution import Resolved

SCOPES = project_scopes("team-a", "research", "local")


def asset(kind: str, name: str, spec: dict[str, Any], **over: Any) -> AssetView:
    fields: dict[str, Any] = {
        "id": f"{kind}-{name}-{over.get('scope', 'tenant')}",
        "kind": kind,
        "name": name,
        "spec": validate_spec(kind, spec),
    }
    fields.update(over)
    return AssetView(**fields)


ENV = asset(
    "environment",
    "jupyter",
    {
        "image": "jupyter/scipy-notebook",
        "command": "start-notebook.sh",
        "environmentVariables": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "runAsUid": 1000,
        "tools": [
            {"name": "lab", "toolType": "jupyter-notebook", "containerPort": 8888},
            {"name": "tb", "containerPort": 6006, "access": "groups", "groups": ["ml"]},
        ],
        "workloadSupportedTypes": ["workspace", "training"],
    },
)
COMPUTE = asset("compute", "half-gpu", {"gpuDevicesRequest": 1, "cpuCoreRequest": 2})
DATA = asset(
    "datasource",
    "datasets",
    {"type": "pvc", "volume": {"existingPvc": True, "claimName": "ds", "path": "/data"}},
    status="No issues found",
)
BROKEN = asset(
    "datasource",
    "broken",
    {"type": "nfs", "volume": {"server": "nfs.local", "path": "/x", "mountPath": "/nfs"}},
    status="Issues found",
    statusReason="NotCreated: server unreachable",
)
SYNCING = asset(
    "datasource",
    "fresh",
    {"type": "hostpath", "volume": {"path": "/scratch", "mountPath": "/scratch"}},
    status="syncing",
)
GIT_CRED = asset("credential", "git-login", {"type": "password"})
S3_CRED = asset("credential", "s3-keys", {"type": "access-key"})
HF = asset("credential", "hf", {"type": "huggingface-token"})
TEMPLATE = asset(
    "template",
    "notebook",
    {
        "workloadType": "workspace",
        "environment": "jupyter",
        "compute": "half-gpu",
        "dataSources": ["datasets"],
        "spec": {"environmentVariables": [{"name": "B", "value": "template"}], "labels": []},
    },
)
ALL = [ENV, COMPUTE, DATA, BROKEN, SYNCING, GIT_CRED, S3_CRED, HF, TEMPLATE]


def submission(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "workspace", "name": "w", "projectId": "team-a", "spec": {}}
    body.update(over)
    return body


def run(sub: dict[str, Any], candidates: list[AssetView] = ALL) -> Resolved | list[Issue]:
    return resolution.resolve(sub, project="team-a", scopes=SCOPES, candidates=candidates)


def resolved(sub: dict[str, Any], candidates: list[AssetView] = ALL) -> Resolved:
    result = run(sub, candidates)
    assert isinstance(result, Resolved), result
    return result


def details(result: Resolved | list[Issue]) -> list[tuple[str, str]]:
    assert isinstance(result, list), result
    return [(i.field, i.details) for i in result]


# --- scope -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "name", "visible"),
    [
        ("tenant", "", True),
        ("cluster", "local", True),
        ("cluster", "other", False),
        ("department", "research", True),
        ("department", "sales", False),
        ("project", "team-a", True),
        ("project", "team-b", False),
    ],
)
def test_an_asset_is_visible_to_its_scope_subtree(scope: str, name: str, visible: bool) -> None:
    view = asset("compute", "c", {"cpuCoreRequest": 1}, scope=scope, scopeName=name)
    assert visible_to(view, SCOPES) is visible


def test_a_project_without_department_sees_no_department_asset() -> None:
    view = asset("compute", "c", {}, scope="department", scopeName="research")
    assert not visible_to(view, project_scopes("solo", None, "local"))


def test_the_most_specific_scope_wins() -> None:
    mine = asset(
        "compute", "half-gpu", {"gpuDevicesRequest": 2}, scope="project", scopeName="team-a"
    )
    done = resolved(submission(compute="half-gpu"), [COMPUTE, mine])
    assert done.submission["spec"]["compute"] == {"gpuDevicesRequest": 2}
    assert [u.assetId for u in done.used] == [mine.id]


def test_an_asset_outside_the_project_scope_is_a_named_rejection() -> None:
    other = asset("compute", "theirs", {}, scope="project", scopeName="team-b")
    assert details(run(submission(compute="theirs"), [other])) == [
        (
            "compute",
            'compute "theirs" is outside the scope of project "team-a" '
            "(it belongs to project team-b)",
        )
    ]


def test_an_unknown_asset_is_named() -> None:
    assert details(run(submission(environment="nope"))) == [
        ("environment", 'environment "nope" does not exist')
    ]


# --- template and overrides ------------------------------------------------------------------


def test_a_template_is_resolved_into_one_complete_spec() -> None:
    done = resolved(submission(template="notebook"))
    spec = done.submission["spec"]
    assert spec["image"] == "jupyter/scipy-notebook"
    assert spec["command"] == "start-notebook.sh"
    assert spec["compute"] == {"gpuDevicesRequest": 1, "cpuCoreRequest": 2.0}
    assert spec["storage"] == {
        "pvc": [{"name": "datasets", "existingPvc": True, "claimName": "ds", "path": "/data"}]
    }
    assert spec["security"] == {"runAsUid": 1000}
    # The template's specific value replaces the environment's variable of the same name.
    assert spec["environmentVariables"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "template"},
    ]
    assert spec["exposedUrls"] == [
        {"container": 8888, "toolType": "jupyter-notebook", "toolName": "lab", "name": "lab"},
        {
            "container": 6006,
            "toolType": "custom",
            "toolName": "tb",
            "name": "tb",
            "authorizedGroups": ["ml"],
        },
    ]
    assert (done.submission["template"], done.submission["environment"]) == (
        "notebook",
        "jupyter",
    )
    assert done.submission["compute"] == "half-gpu"
    assert done.submission["dataSources"] == ["datasets"]
    assert {u.kind for u in done.used} == {"template", "environment", "compute", "datasource"}


def test_the_submitters_values_override_the_template() -> None:
    done = resolved(
        submission(
            template="notebook",
            spec={
                "image": "custom:1",
                "compute": {"gpuDevicesRequest": 2},
                "environmentVariables": [{"name": "A", "value": "mine"}],
            },
        )
    )
    spec = done.submission["spec"]
    assert spec["image"] == "custom:1"
    assert spec["compute"] == {"gpuDevicesRequest": 2, "cpuCoreRequest": 2.0}
    assert {v["name"]: v["value"] for v in spec["environmentVariables"]} == {
        "A": "mine",
        "B": "template",
    }


def test_a_named_asset_replaces_the_templates_and_data_sources_add_up() -> None:
    bigger = asset("compute", "big", {"gpuDevicesRequest": 4})
    repo = asset(
        "datasource",
        "code",
        {"type": "git", "volume": {"repository": "https://git.local/r.git", "path": "/code"}},
    )
    done = resolved(
        submission(template="notebook", compute="big", dataSources=["code"]),
        [*ALL, bigger, repo],
    )
    assert done.submission["spec"]["compute"] == {"gpuDevicesRequest": 4}
    assert set(done.submission["spec"]["storage"]) == {"pvc", "git"}
    assert done.submission["dataSources"] == ["datasets", "code"]


def test_a_credential_becomes_a_secret_reference() -> None:
    repo = asset(
        "datasource",
        "repo",
        {
            "type": "git",
            "volume": {"repository": "https://git.local/r.git", "path": "/code"},
            "credential": "git-login",
        },
    )
    done = resolved(submission(dataSources=["repo"]), [*ALL, repo])
    git = done.submission["spec"]["storage"]["git"][0]
    assert git["passwordSecret"] == "berth-cred-git-login"


def test_wanted_follows_the_template_to_its_assets() -> None:
    first = resolution.wanted(submission(template="notebook"), [])
    assert [(r.kind, r.name) for r in first] == [("template", "notebook")]
    second = resolution.wanted(submission(template="notebook"), [TEMPLATE])
    assert {(r.kind, r.name) for r in second} == {
        ("template", "notebook"),
        ("environment", "jupyter"),
        ("compute", "half-gpu"),
        ("datasource", "datasets"),
    }


# --- rejections ----------------------------------------------------------------------------------


def test_a_data_source_with_issues_is_refused_with_the_reason() -> None:
    assert details(run(submission(dataSources=["broken"]))) == [
        (
            "dataSources.0",
            'data source "broken" cannot be used: its status is "Issues found": '
            "NotCreated: server unreachable",
        )
    ]


def test_a_syncing_data_source_is_refused() -> None:
    assert details(run(submission(dataSources=["fresh"]))) == [
        ("dataSources.0", 'data source "fresh" cannot be used: its status is "syncing"')
    ]


def test_an_environment_that_does_not_support_the_type_is_refused() -> None:
    assert details(run(submission(kind="inference", environment="jupyter"))) == [
        (
            "environment",
            'environment "jupyter" does not support inference workloads '
            "(it supports workspace, training)",
        )
    ]


def test_a_template_for_another_type_is_refused() -> None:
    issues = details(run(submission(kind="training", template="notebook")))
    assert ("template", 'template "notebook" is for workspace workloads, not training') in issues


def test_a_credential_of_the_wrong_kind_is_refused() -> None:
    repo = asset(
        "datasource",
        "repo",
        {
            "type": "git",
            "volume": {"repository": "https://git.local/r.git", "path": "/code"},
            "credential": "s3-keys",
        },
    )
    assert details(run(submission(dataSources=["repo"]), [*ALL, repo])) == [
        (
            "dataSources.0.credential",
            'credential "s3-keys" is of type access-key; a git data source needs password',
        )
    ]


def test_an_environment_variable_from_a_credential_needs_a_key_of_its_type() -> None:
    spec = {
        "environmentVariables": [{"name": "T", "credential": {"name": "hf", "key": "Password"}}]
    }
    assert details(run(submission(spec=spec))) == [
        (
            "spec.environmentVariables.0.credential",
            'credential "hf" is of type huggingface-token, which has no key "Password" '
            "(it has HF_TOKEN)",
        )
    ]
    ok = {"environmentVariables": [{"name": "T", "credential": {"name": "hf", "key": "HF_TOKEN"}}]}
    assert isinstance(run(submission(spec=ok)), Resolved)


def test_every_problem_is_named_at_once() -> None:
    other = asset("compute", "theirs", {}, scope="department", scopeName="sales")
    issues = details(
        run(
            submission(
                kind="inference", environment="jupyter", compute="theirs", dataSources=["broken"]
            ),
            [*ALL, other],
        )
    )
    assert [f for f, _ in issues] == ["environment", "compute", "dataSources.0"]


def test_an_unset_override_replaces_nothing() -> None:
    done = resolved(submission(template="notebook", spec={"image": None, "compute": None}))
    assert done.submission["spec"]["image"] == "jupyter/scipy-notebook"
    assert done.submission["spec"]["compute"]["gpuDevicesRequest"] == 1
