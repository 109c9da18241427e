"""Policies as an administrator and a submitter meet them: the department + project example."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.e2e.conftest import Cli

# The department policy of the Run:ai example, for trainings.
DEPARTMENT = {
    "defaults": {
        "imagePullPolicy": "IfNotPresent",
        "createHomeDir": True,
        "nodePools": ["a100", "default"],
        "backoffLimit": 3,
        "autoDeletionTimeAfterCompletionSeconds": 604800,
        "environmentVariables": {
            "instances": [
                {"name": "HF_HOME", "value": "/data/hf-cache"},
                {"name": "WANDB_BASE_URL", "value": "https://wandb.corp.example"},
            ]
        },
        "compute": {"cpuCoreRequest": 2, "cpuMemoryRequest": "16G", "gpuDevicesRequest": 1},
        "security": {"runAsNonRoot": True, "allowPrivilegeEscalation": False},
    },
    "rules": {
        "image": {"required": True},
        "imagePullPolicy": {"canEdit": False},
        "environmentVariables": {"instances": {"locked": ["WANDB_BASE_URL"]}},
        "compute": {
            "gpuDevicesRequest": {"min": 0, "max": 2},
            "cpuCoreRequest": {"min": 0.5, "max": 16},
            "cpuMemoryRequest": {"min": "1G", "max": "128G"},
            "extendedResources": {"instances": {"canAdd": False}},
        },
        "security": {"allowPrivilegeEscalation": {"canEdit": False}, "runAsUid": {"min": 1000}},
        "storage": {
            "hostPath": {"instances": {"canAdd": False}},
            "nfs": {"instances": {"canAdd": False}},
        },
    },
}
PROJECT = {"defaults": {"nodePools": ["default"]}, "rules": {"backoffLimit": {"max": 5}}}
CONFLICT = {"rules": {"compute": {"gpuDevicesRequest": {"max": 1}}}}

DEPT_SCOPE = ("--type", "training", "--scope", "department", "--department", "research")
PROJECT_SCOPE = ("--type", "training", "--scope", "project", "--project", "team-b")


def _file(tmp_path: Path, name: str, body: object) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body), "utf-8")
    return str(path)


def test_department_and_project_policies_govern_trainings(cli: Cli, tmp_path: Path) -> None:
    # Only trainings of the research department are affected, and only until the end.
    try:
        _department_and_project_example(cli, tmp_path)
    finally:
        cli.run("policy", "delete", *PROJECT_SCOPE)
        cli.run("policy", "delete", *DEPT_SCOPE)
    effective = cli.json("policy", "effective", "-p", "team-b", "--type", "training")
    assert effective["rules"] == [] and effective["defaults"] == []


def _department_and_project_example(cli: Cli, tmp_path: Path) -> None:
    dept_file = _file(tmp_path, "dept", DEPARTMENT)
    checked = cli.run("policy", "apply", "-f", dept_file, *DEPT_SCOPE, "--validate-only")
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert "valid (not saved)" in checked.stdout

    bad = _file(
        tmp_path, "bad", {"rules": {"compute": {"gpuDevicesRequest": {"min": 3, "max": 1}}}}
    )
    refused = cli.run("policy", "apply", "-f", bad, *DEPT_SCOPE)
    assert refused.returncode == 1
    assert "rules.compute.gpuDevicesRequest" in refused.stderr
    assert "min (3) is greater than max (1)" in refused.stderr

    applied = cli.run("policy", "apply", "-f", dept_file, *DEPT_SCOPE)
    assert applied.returncode == 0, applied.stderr + applied.stdout
    applied = cli.run("policy", "apply", "-f", _file(tmp_path, "project", PROJECT), *PROJECT_SCOPE)
    assert applied.returncode == 0, applied.stderr + applied.stdout

    conflict = cli.run(
        "policy", "apply", "-f", _file(tmp_path, "conflict", CONFLICT), *PROJECT_SCOPE
    )
    assert conflict.returncode == 1
    assert 'Field "compute.gpuDevicesRequest" already has rules in department: "research"' in (
        " ".join(conflict.stderr.split())
    )

    stored = cli.json("policy", "get", *PROJECT_SCOPE)
    assert stored["policy"]["rules"] == {"backoffLimit": {"max": 5}}
    assert stored["meta"]["departmentId"] == "research"  # looked up in the catalog

    shown = cli.run("policy", "effective", "-p", "team-b", "--type", "training")
    assert shown.returncode == 0, shown.stderr
    assert "department research" in shown.stdout and "project team-b" in shown.stdout
    effective = cli.json("policy", "effective", "-p", "team-b", "--type", "training")
    rules = {r["field"]: r["source"] for r in effective["rules"]}
    assert rules["compute.gpuDevicesRequest"] == {"scope": "department", "id": "research"}
    assert rules["backoffLimit"] == {"scope": "project", "id": "team-b"}
    defaults = {d["field"]: d["source"]["scope"] for d in effective["defaults"]}
    assert (
        defaults["nodePools"] == "project" and defaults["compute.cpuMemoryRequest"] == "department"
    )

    dry = cli.run(
        "submit", "training", "-p", "team-b", "--name", "pol-dry", "-i", "pytorch/pytorch",
        "--gpu", "4", "--dry-run", "-o", "json",
    )  # fmt: skip
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert json.loads(dry.stdout)["issues"] == [
        {
            "field": "compute.gpuDevicesRequest",
            "details": "value must be no greater than 2 (rule from department research)",
        }
    ]

    rejected = cli.run(
        "submit", "training", "-p", "team-b", "--name", "pol-4gpu", "-i", "pytorch/pytorch",
        "--gpu", "4", "--wait", "--timeout", "60",
    )  # fmt: skip
    assert rejected.returncode != 0
    text = " ".join((rejected.stdout + rejected.stderr).split())
    assert "compute.gpuDevicesRequest" in text
    assert "value must be no greater than 2 (rule from department research)" in text

    approved = cli.run(
        "submit", "training", "-p", "team-b", "--name", "pol-2gpu", "-i", "pytorch/pytorch",
        "--gpu", "2", "--wait", "--timeout", "60",
    )  # fmt: skip
    assert approved.returncode == 0, approved.stdout + approved.stderr
    spec = cli.json("describe", "pol-2gpu", "-p", "team-b")["spec"]["spec"]
    assert spec["compute"]["gpuDevicesRequest"] == 2
    assert spec["compute"]["cpuMemoryRequest"] == "16G"
    assert spec["compute"]["cpuCoreRequest"] == 2
    assert spec["backoffLimit"] == 3
    assert spec["autoDeletionTimeAfterCompletionSeconds"] == 604800
    assert spec["nodePools"] == ["default"]
    assert [e["name"] for e in spec["environmentVariables"]] == ["HF_HOME", "WANDB_BASE_URL"]
