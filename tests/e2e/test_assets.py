"""Assets and templates as a user drives them with the CLI: the catalog filled in, workloads
submitted from a template with an override, a data source with issues refused with its reason,
and no credential value anywhere on the bus, not even in the request that brings it (the CLI
seals it to the catalog's key): yet a workload whose data source needs a credential runs, as
the scheduler-adapter got the value sealed to its own key and made the Secret."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from nats.aio.msg import Msg

from berth.cli.suite import Suite
from berth.contracts.roles import ADMIN
from berth.contracts.subjects import RPC_CATALOG_ASSETS_PUT
from tests.e2e.conftest import Cli

SECRET = "hf_assets-" + uuid.uuid4().hex
PASSWORD = "pw-assets-" + uuid.uuid4().hex


def ok(cli: Cli, *args: str) -> str:
    done = cli.run(*args)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout


async def test_workloads_from_assets_and_templates(cli: Cli, suite: Suite) -> None:
    seen: list[Msg] = []

    async def record(msg: Msg) -> None:
        seen.append(msg)

    # The operator's credential: only admin may read everything on the bus.
    nc = await suite.connect(ADMIN, name="assets-e2e-scan")
    await nc.subscribe(">", cb=record)
    await nc.flush()
    cli.env["ASSETS_HF_TOKEN"] = SECRET
    cli.env["ASSETS_GIT_PASSWORD"] = PASSWORD
    cli.env["ASSETS_GIT_USER"] = "ml-bot"

    def run(*args: str) -> str:
        return ok(cli, *args)

    try:
        await asyncio.to_thread(_build_catalog, run, cli)
        await asyncio.to_thread(_submit_and_check, cli)
        await asyncio.sleep(0.5)  # the last spans and events reach the bus
    finally:
        await nc.close()

    assert len(seen) > 100  # the scan did see the test's traffic
    puts = [json.loads(m.data) for m in seen if m.subject == RPC_CATALOG_ASSETS_PUT]
    credentials = [p for p in puts if p["kind"] == "credential"]
    # ...including both credentials' create requests, which carry their values sealed.
    assert [(p["name"], bool(p["sealedValues"]), p["secretValues"]) for p in credentials] == [
        ("assets-hf", True, {}),
        ("assets-git", True, {}),
    ]
    for value in (SECRET, PASSWORD):
        assert not [m.subject for m in seen if value.encode() in m.data]
        assert not any(
            value.encode() in b"".join(f"{k}{v}".encode() for k, v in (m.headers or {}).items())
            for m in seen
        )


def _build_catalog(run: Any, cli: Cli) -> None:
    run("department", "create", "assets-dept")
    run(
        "project",
        "create",
        "assets-proj",
        "--department",
        "assets-dept",
        "--node-pools",
        "default",
        "--quota",
        "default:gpu=4,cpu=32,memory=128,weight=Medium",
    )
    run(
        "environment",
        "create",
        "assets-jupyter",
        "--image",
        "jupyter/base-notebook",
        "--tool",
        "lab:jupyter-notebook:8888",
        "--supports",
        "workspace,training",
        "--scope",
        "department",
        "--scope-name",
        "assets-dept",
    )
    run("compute", "create", "assets-gpu", "--gpu", "1", "--cpu", "2", "--memory", "4G")
    run(
        "datasource",
        "create",
        "assets-data",
        "--type",
        "pvc",
        "--claim-name",
        "assets-data",
        "--path",
        "/data",
        "--status",
        "No issues found",
    )
    run(
        "datasource",
        "create",
        "assets-broken",
        "--type",
        "nfs",
        "--server",
        "nfs.local",
        "--source-path",
        "/exports",
        "--path",
        "/nfs",
        "--status",
        "Issues found",
        "--status-reason",
        "ReplicationError: export not reachable",
    )
    run(
        "credential",
        "create",
        "assets-hf",
        "--type",
        "huggingface-token",
        "--value",
        "HF_TOKEN=ASSETS_HF_TOKEN",
    )
    run(
        "credential",
        "create",
        "assets-git",
        "--type",
        "password",
        "--value",
        "User=ASSETS_GIT_USER",
        "--value",
        "Password=ASSETS_GIT_PASSWORD",
    )
    run(
        "datasource",
        "create",
        "assets-repo",
        "--type",
        "git",
        "--repository",
        "https://git.example/ml.git",
        "--path",
        "/code",
        "--credential",
        "assets-git",
        "--status",
        "No issues found",
    )
    run(
        "environment",
        "create",
        "assets-vllm",
        "--image",
        "vllm/vllm-openai",
        "--supports",
        "inference",
    )
    finetune = [
        "template",
        "create",
        "assets-finetune",
        "--workload-type",
        "training",
        "--environment",
        "assets-jupyter",
        "--compute",
        "assets-gpu",
        "--datasource",
        "assets-data",
        "--command",
        "python train.py",
    ]
    # The department's environment is not visible from the tenant: refused when it is made.
    hidden = cli.run(*finetune)
    assert hidden.returncode != 0
    assert 'environment "assets-jupyter" is not visible from the tenant' in (
        hidden.stdout + hidden.stderr
    )
    run(*finetune, "--scope", "department", "--scope-name", "assets-dept")
    run(
        "template",
        "create",
        "assets-serve",
        "--workload-type",
        "inference",
        "--environment",
        "assets-vllm",
        "--compute",
        "assets-gpu",
    )
    run(
        "template",
        "create",
        "assets-notebook",
        "--workload-type",
        "workspace",
        "--environment",
        "assets-jupyter",
        "--compute",
        "assets-gpu",
        "--datasource",
        "assets-data",
        "--label",
        "team=ml",
        "--scope",
        "project",
        "--scope-name",
        "assets-proj",
    )


def _submit_and_check(cli: Cli) -> None:
    templates = cli.json("template", "list", "--project", "assets-proj", "--search", "notebook")
    assert [t["name"] for t in templates] == ["assets-notebook"]
    credential = cli.json("credential", "describe", "assets-hf")
    assert credential["spec"]["secretName"] == "berth-cred-assets-hf"
    assert SECRET not in str(credential)

    done = cli.run(
        "submit",
        "workspace",
        "-p",
        "assets-proj",
        "--name",
        "assets-ws",
        "--template",
        "assets-notebook",
        "--cpu",
        "3",
        "--wait",
        "--timeout",
        "60",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Running" in done.stdout

    view = cli.json("describe", "assets-ws", "-p", "assets-proj")
    sub = view["spec"]
    spec = sub["spec"]
    assert spec["image"] == "jupyter/base-notebook"
    # The template's compute resource, with the submitter's override on top.
    assert spec["compute"]["gpuDevicesRequest"] == 1
    assert spec["compute"]["cpuCoreRequest"] == 3
    assert spec["compute"]["cpuMemoryRequest"] == "4G"
    assert spec["storage"]["pvc"][0]["claimName"] == "assets-data"
    assert {"name": "team", "value": "ml"} in spec["labels"]
    assert spec["exposedUrls"][0]["toolType"] == "jupyter-notebook"
    assert (sub["template"], sub["environment"], sub["compute"], sub["dataSources"]) == (
        "assets-notebook",
        "assets-jupyter",
        "assets-gpu",
        ["assets-data"],
    )

    # The git data source's credential becomes a Secret on the cluster side before the pods
    # start: without it the simulated cluster would hold them (CreateContainerConfigError).
    done = cli.run(
        "submit",
        "training",
        "-p",
        "assets-proj",
        "--name",
        "assets-code",
        "--template",
        "assets-finetune",
        "--datasource",
        "assets-repo",
        "--wait",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Completed" in done.stdout
    code = cli.json("describe", "assets-code", "-p", "assets-proj")["spec"]["spec"]
    assert code["storage"]["git"][0]["passwordSecret"] == "berth-cred-assets-git"

    for kind, name, template, final in (
        ("training", "assets-ft", "assets-finetune", "Completed"),
        ("inference", "assets-llm", "assets-serve", "Running"),
    ):
        done = cli.run(
            "submit", kind, "-p", "assets-proj", "--name", name, "--template", template, "--wait"
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert final in done.stdout
        assert cli.json("describe", name, "-p", "assets-proj")["spec"]["template"] == template

    wrong = cli.run(
        "submit",
        "inference",
        "-p",
        "assets-proj",
        "--name",
        "assets-bad",
        "--template",
        "assets-notebook",
        "--environment",
        "assets-jupyter",
        "--wait",
    )
    assert wrong.returncode == 1
    assert 'environment "assets-jupyter" does not support inference' in " ".join(
        (wrong.stdout + wrong.stderr).split()
    )

    refused = cli.run(
        "submit",
        "workspace",
        "-p",
        "assets-proj",
        "--name",
        "assets-ws-broken",
        "--template",
        "assets-notebook",
        "--datasource",
        "assets-broken",
        "--wait",
        "--timeout",
        "60",
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr
    rejected = cli.json("describe", "assets-ws-broken", "-p", "assets-proj")
    assert rejected["status"] == "rejected"
    assert rejected["issues"] == [
        {
            "field": "dataSources.1",
            "details": 'data source "assets-broken" cannot be used: its status is '
            '"Issues found": ReplicationError: export not reachable',
        }
    ]

    in_use = cli.run("compute", "delete", "assets-gpu")
    assert in_use.returncode == 1
    assert "template assets-notebook" in in_use.stderr
