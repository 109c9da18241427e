"""Run:ai's REST API on the running suite: creation bodies of every kind, the answers checked
against Run:ai's schemas, policies, actions and the live event stream."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from berth.cli.suite import Suite
from tests.e2e.api_client import bearer_token, client, live_events, wait_for_phase
from tests.e2e.conftest import Cli, grant
from tests.e2e.runai_schemas import problems

pytestmark = pytest.mark.e2e

OWNER = "api-owner@example.com"
FAST = {"name": "berth.dev/sim-runtime-seconds", "value": "5"}

# Run:ai 2.18 creation bodies, written from its OpenAPI schemas (TrainingCreationRequest, ...):
# three of each kind. The first of each is also what the other tests submit.
BODIES: dict[str, tuple[str, dict[str, Any], str]] = {
    "training": (
        "trainings",
        {
            "name": "api-train",
            "projectId": "team-a",
            "clusterId": "local",
            "spec": {
                "image": "pytorch/pytorch",
                "command": "python train.py",
                "args": "--epochs 1",
                "compute": {"gpuDevicesRequest": 1, "cpuCoreRequest": 2, "cpuMemoryRequest": "4G"},
                "environmentVariables": [{"name": "EPOCHS", "value": "1"}],
                "annotations": [FAST],
                "labels": [{"name": "team", "value": "vision"}],
            },
        },
        "Training1",
    ),
    "training-sweep": (
        "trainings",
        {
            "name": "api-sweep",
            "projectId": "team-a",
            "clusterId": "local",
            "spec": {
                "image": "pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime",
                "imagePullPolicy": "IfNotPresent",
                "command": "python sweep.py",
                "workingDir": "/code",
                "completions": 4,
                "parallelism": 2,
                "backoffLimit": 2,
                "priorityClass": "train",
                "terminateAfterPreemption": True,
                "autoDeletionTimeAfterCompletionSeconds": 600,
                "nodePools": ["a100"],
                "compute": {"gpuDevicesRequest": 2, "cpuMemoryRequest": "32G"},
                "storage": {
                    "git": [
                        {
                            "name": "code",
                            "repository": "https://github.com/example/sweeps.git",
                            "branch": "main",
                            "path": "/code",
                        }
                    ]
                },
                "annotations": [FAST],
            },
        },
        "Training1",
    ),
    "training-fraction": (
        "trainings",
        {
            "name": "api-finetune",
            "projectId": "team-a",
            "clusterId": "local",
            "spec": {
                "image": "huggingface/transformers-pytorch-gpu",
                "command": "python finetune.py",
                "args": "--lr 3e-5 --batch-size 8",
                "compute": {
                    "gpuDevicesRequest": 1,
                    "gpuRequestType": "portion",
                    "gpuPortionRequest": 0.25,
                    "cpuCoreRequest": 1,
                    "cpuCoreLimit": 2,
                    "cpuMemoryRequest": "8G",
                    "cpuMemoryLimit": "12G",
                },
                "environmentVariables": [
                    {"name": "HF_HOME", "value": "/cache"},
                    {"name": "WANDB_MODE", "value": "offline"},
                ],
                "storage": {
                    "pvc": [
                        {
                            "name": "cache",
                            "existingPvc": False,
                            "path": "/cache",
                            "claimInfo": {
                                "size": "20G",
                                "accessModes": {"readWriteOnce": True},
                                "volumeMode": "Filesystem",
                            },
                        }
                    ]
                },
                "tolerations": [
                    {
                        "name": "gpu",
                        "key": "nvidia.com/gpu",
                        "operator": "Exists",
                        "effect": "NoSchedule",
                    }
                ],
                "annotations": [FAST],
                "labels": [{"name": "cost-center", "value": "cc-17"}],
            },
        },
        "Training1",
    ),
    "workspace": (
        "workspaces",
        {
            "name": "api-nb",
            "projectId": "team-a",
            "clusterId": "local",
            "spec": {
                "image": "jupyter/base-notebook",
                "compute": {
                    "gpuDevicesRequest": 1,
                    "gpuRequestType": "portion",
                    "gpuPortionRequest": 0.5,
                },
                "exposedUrls": [{"container": 8888, "toolType": "jupyter-notebook"}],
            },
        },
        "Workspace1",
    ),
    "workspace-vscode": (
        "workspaces",
        {
            "name": "api-vscode",
            "projectId": "team-a",
            "clusterId": "local",
            "spec": {
                "image": "codercom/code-server:4.92.2",
                "command": "code-server",
                "args": "--bind-addr 0.0.0.0:8080 --auth none",
                "createHomeDir": True,
                "priorityClass": "build",
                "nodePools": ["default"],
                "compute": {"gpuDevicesRequest": 1, "cpuCoreRequest": 4, "cpuMemoryRequest": "16G"},
                "exposedUrls": [
                    {"container": 8080, "toolType": "visual-studio-code", "toolName": "VS Code"}
                ],
                "relatedUrls": [
                    {"url": "https://wandb.ai/example/vision", "type": "wandb", "name": "runs"}
                ],
                "annotations": [{"name": "team", "value": "vision"}],
                "labels": [{"name": "ide", "value": "vscode"}],
            },
        },
        "Workspace1",
    ),
    "workspace-cpu": (
        "workspaces",
        {
            "name": "api-cpu-nb",
            "projectId": "team-a",
            "clusterId": "local",
            "spec": {
                "image": "jupyter/scipy-notebook",
                "imagePullPolicy": "Always",
                "command": "start-notebook.sh",
                "args": "--NotebookApp.base_url=/${RUNAI_PROJECT}/${RUNAI_JOB_NAME}",
                "compute": {"gpuDevicesRequest": 0, "cpuCoreRequest": 1, "cpuMemoryRequest": "2G"},
                "environmentVariables": [{"name": "JUPYTER_ENABLE_LAB", "value": "yes"}],
                "exposedUrls": [{"container": 8888, "toolType": "jupyter-notebook"}],
                "storage": {
                    "git": [
                        {"repository": "https://github.com/example/notebooks.git", "path": "/nb"}
                    ]
                },
            },
        },
        "Workspace1",
    ),
    "distributed": (
        "distributed",
        {
            "name": "api-dist",
            "projectId": "team-a",
            "clusterId": "local",
            "spec": {
                "image": "pytorch/pytorch",
                "distributedFramework": "PyTorch",
                "numWorkers": 2,
                "compute": {"gpuDevicesRequest": 1},
                "annotations": [FAST],
            },
            "masterSpecSameAsWorker": True,
        },
        "DistributedWorkload",
    ),
    "distributed-master": (
        "distributed",
        {
            "name": "api-dist-master",
            "projectId": "team-a",
            "clusterId": "local",
            "spec": {
                "image": "kubeflow/pytorch-dist-mnist:latest",
                "distributedFramework": "PyTorch",
                "numWorkers": 2,
                "compute": {
                    "cpuCoreRequest": 0.1,
                    "gpuRequestType": "portion",
                    "cpuMemoryRequest": "100M",
                    "gpuDevicesRequest": 1,
                    "gpuPortionRequest": 0.1,
                },
                "annotations": [FAST],
            },
            "masterSpecSameAsWorker": False,
            "masterSpec": {
                "image": "kubeflow/pytorch-dist-mnist:latest",
                "command": "python master.py",
                "environmentVariables": [{"name": "ROLE", "value": "master"}],
                "compute": {"cpuCoreRequest": 1, "gpuDevicesRequest": 0},
            },
        },
        "DistributedWorkload",
    ),
    "distributed-mpi": (
        "distributed",
        {
            "name": "api-mpi",
            "projectId": "team-a",
            "clusterId": "local",
            "spec": {
                "image": "mpioperator/mpi-pi:openmpi",
                "command": "mpirun -n 4 /home/mpiuser/pi",
                "distributedFramework": "MPI",
                "numWorkers": 2,
                "slotsPerWorker": 2,
                "compute": {"gpuDevicesRequest": 1, "cpuCoreRequest": 2},
                "annotations": [FAST],
            },
            "masterSpecSameAsWorker": True,
        },
        "DistributedWorkload",
    ),
    "inference": (
        "inferences",
        {
            "name": "api-llm",
            "projectId": "team-a",
            "clusterId": "local",
            "spec": {
                "image": "vllm/vllm-openai",
                "servingPort": {"container": 8000, "protocol": "http"},
                "autoscaling": {"minReplicas": 1, "maxReplicas": 2, "metric": "concurrency"},
                "compute": {"gpuDevicesRequest": 1},
            },
        },
        "Inference1",
    ),
    "inference-llama": (
        "inferences",
        {
            "name": "api-llama",
            "projectId": "team-a",
            "clusterId": "local",
            "spec": {
                "image": "vllm/vllm-openai:latest",
                "args": "--model meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192",
                "environmentVariables": [{"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}],
                "servingPort": {"container": 8000, "protocol": "http"},
                "autoscaling": {
                    "minReplicas": 1,
                    "maxReplicas": 4,
                    "metric": "concurrency",
                    "metricThreshold": 100,
                },
                "compute": {"gpuDevicesRequest": 1, "cpuMemoryRequest": "24G"},
                "nodePools": ["a100"],
                "labels": [{"name": "model", "value": "llama-3.1-8b"}],
            },
        },
        "Inference1",
    ),
    "inference-grpc": (
        "inferences",
        {
            "name": "api-triton",
            "projectId": "team-a",
            "clusterId": "local",
            "spec": {
                "image": "nvcr.io/nvidia/tritonserver:24.08-py3",
                "command": "tritonserver --model-repository=/models",
                "servingPort": {"container": 8001, "protocol": "grpc"},
                "autoscaling": {
                    "minReplicas": 1,
                    "maxReplicas": 3,
                    "metric": "throughput",
                    "metricThreshold": 50,
                },
                "compute": {
                    "gpuDevicesRequest": 1,
                    "gpuRequestType": "portion",
                    "gpuPortionRequest": 0.5,
                },
                "storage": {
                    "git": [
                        {"repository": "https://github.com/example/models.git", "path": "/models"}
                    ]
                },
            },
        },
        "Inference1",
    ),
}
KINDS = {
    "trainings": "training",
    "workspaces": "workspace",
    "distributed": "distributed",
    "inferences": "inference",
}
CREATION_REQUESTS = {
    "trainings": "TrainingCreationRequest",
    "workspaces": "WorkspaceCreationRequest",
    "distributed": "DistributedCreationRequest",
    "inferences": "InferenceCreationRequest",
}


@pytest.fixture(scope="module")
def api(suite: Suite, cli: Cli) -> Iterator[httpx.Client]:
    # The caller administers the installation: these tests are about the API's shapes, the
    # access rules have their own (tests/e2e/test_access.py).
    grant(cli, OWNER, "System administrator")
    with client(suite.api_url, bearer_token(cli, OWNER)) as http:
        yield http


def test_a_call_without_a_token_is_401_in_runais_error_shape(suite: Suite) -> None:
    with client(suite.api_url, None) as anonymous:
        response = anonymous.get("/api/v1/workloads")
    assert response.status_code == 401
    assert problems(response.json(), "Error") == []


@pytest.mark.parametrize("variant", list(BODIES))
def test_each_kind_is_created_from_a_runai_body_and_answered_in_runais_shape(
    api: httpx.Client, variant: str
) -> None:
    collection, body, schema = BODIES[variant]
    kind = KINDS[collection]
    # The body is Run:ai's: its own creation request schema takes it as it is.
    assert problems(body, CREATION_REQUESTS[collection]) == []
    response = api.post(f"/api/v1/workloads/{collection}", json=body)
    assert response.status_code == 200, response.text
    created = response.json()
    assert problems(created, schema) == []
    assert created["createdBy"] == OWNER and created["name"] == body["name"]

    one = api.get(f"/api/v1/workloads/{created['workloadId']}")
    assert one.status_code == 200
    assert problems(one.json(), "Workload") == []
    assert one.json()["type"].lower() == kind

    listed = api.get(
        "/api/v1/workloads", params={"filterBy": ["projectName==team-a", f"type=={kind}"]}
    )
    assert listed.status_code == 200
    assert created["workloadId"] in {w["id"] for w in listed.json()["workloads"]}
    for item in listed.json()["workloads"]:
        assert problems(item, "Workload") == []

    deleted = api.delete(f"/api/v1/workloads/{collection}/{created['workloadId']}")
    assert deleted.status_code == 204, deleted.text


def test_a_training_runs_to_completion_and_streams_its_phases(
    api: httpx.Client, suite: Suite
) -> None:
    seen: list[dict[str, Any]] = []
    connected = threading.Event()

    def follow() -> None:
        with (
            httpx.Client(base_url=suite.api_url, headers=dict(api.headers), timeout=60) as http,
            http.stream(
                "GET", "/api/v1/workloads/events", params={"projectName": "team-a"}
            ) as stream,
        ):
            for event in live_events(stream, connected):
                seen.append(event)
                if (event.get("data") or {}).get("phase") == "Completed":
                    return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert connected.wait(30)
    body = {**BODIES["training"][1], "name": "api-stream"}
    created = api.post("/api/v1/workloads/trainings", json=body).json()
    done = wait_for_phase(api, created["workloadId"], {"Completed", "Failed"})
    assert done["phase"] == "Completed"
    follower.join(30)
    # An event may report several transitions: the earlier ones as its history.
    phases = [
        phase
        for e in seen
        if e["subject"] == created["workloadId"] and e["type"].endswith("phase-changed")
        for phase in [*(t["phase"] for t in e["data"].get("history") or []), e["data"]["phase"]]
    ]
    assert phases[-1] == "Completed" and "Running" in phases

    history = api.get(f"/api/v1/workloads/{created['workloadId']}/events").json()
    assert [e["reason"] for e in history["events"]][-1] == "Completed"
    for event in history["events"]:
        assert problems(event, "Event1") == []
    records = api.get(f"/api/v1/workloads/{created['workloadId']}/history").json()["records"]
    assert records[-1]["spec"]["phaseUpdate"]["phase"] == "Completed"
    for record in records:
        assert problems(record, "HistoryRecord") == []


def test_a_policy_over_the_maximum_is_400_naming_the_field(api: httpx.Client) -> None:
    meta = {"scope": "project", "projectId": "team-b", "name": "api-test"}
    policy = {"rules": {"compute": {"gpuDevicesRequest": {"max": 1}}}}
    applied = api.put("/api/v2/policy/trainings", json={"meta": meta, "policy": policy})
    assert applied.status_code == 200, applied.text
    try:
        got = api.get(
            "/api/v2/policy/trainings", params={"scope": "project", "projectId": "team-b"}
        )
        assert got.status_code == 200
        assert got.json()["policy"]["rules"] == policy["rules"]
        assert got.json()["effective"]["rules"]["compute"]["gpuDevicesRequest"]["max"] == 1
        listed = api.get(
            "/api/v2/policy", params={"workloadType": "Training", "projectId": "team-b"}
        )
        assert listed.status_code == 200, listed.text
        entry = next(p for p in listed.json()["policies"] if p["meta"]["name"] == "api-test")
        # berth's project ids are the projects' names; Run:ai's policy meta has integers.
        numbered = {**entry, "meta": {**entry["meta"], "projectId": 7}}
        assert problems({"policies": [numbered]}, "PolicyListResponse") == []
        assert entry["meta"]["scope"] == "project" and entry["policy"]["rules"] == policy["rules"]

        body = {**BODIES["training"][1], "name": "api-too-big", "projectId": "team-b"}
        body["spec"] = {**body["spec"], "compute": {"gpuDevicesRequest": 2}}
        refused = api.post("/api/v1/workloads/trainings", json=body)
        assert refused.status_code == 400, refused.text
        assert problems(refused.json(), "SubmissionError") == []
        fields = [i["field"] for i in refused.json()["complianceIssues"]]
        assert "compute.gpuDevicesRequest" in fields

        bad = api.put(
            "/api/v2/policy/trainings",
            json={
                "meta": meta,
                "policy": {"rules": {"compute": {"gpuDevicesRequest": {"min": 3, "max": 1}}}},
            },
        )
        assert bad.status_code == 400 and problems(bad.json(), "Error") == []
    finally:
        gone = api.delete(
            "/api/v2/policy/trainings", params={"scope": "project", "projectId": "team-b"}
        )
    assert gone.status_code == 204, gone.text


def test_suspend_and_resume_a_workspace_and_deny_another_user(
    api: httpx.Client, suite: Suite, cli: Cli
) -> None:
    body = {**BODIES["workspace"][1], "name": "api-suspend"}
    created = api.post("/api/v1/workloads/workspaces", json=body).json()
    workload_id = created["workloadId"]
    wait_for_phase(api, workload_id, {"Running"})
    suspended = api.post(f"/api/v1/workloads/workspaces/{workload_id}/suspend")
    assert suspended.status_code == 202, suspended.text
    assert problems(suspended.json(), "HttpResponse2") == []
    wait_for_phase(api, workload_id, {"Stopped"})
    # A completed action's phase no longer allows it: ownership refuses with the reason.
    again = api.post(f"/api/v1/workloads/workspaces/{workload_id}/suspend")
    assert again.status_code == 403 and "cannot suspend" in again.json()["message"]
    resumed = api.post(f"/api/v1/workloads/workspaces/{workload_id}/resume")
    assert resumed.status_code == 202
    wait_for_phase(api, workload_id, {"Running"})
    assert api.delete(f"/api/v1/workloads/workspaces/{workload_id}").status_code == 204
    missing = api.get("/api/v1/workloads/no-such-workload")
    assert missing.status_code == 404 and problems(missing.json(), "Error") == []


def test_assets_organisation_and_clusters_read_as_in_runai(api: httpx.Client) -> None:
    environments = api.get("/api/v1/asset/environment", params={"projectId": "team-a"}).json()
    names = {e["meta"]["name"] for e in environments["entries"]}
    assert "pytorch" in names  # the demo catalog's
    pytorch = next(e for e in environments["entries"] if e["meta"]["name"] == "pytorch")
    one = api.get(f"/api/v1/asset/environment/{pytorch['meta']['id']}")
    assert one.status_code == 200 and one.json()["spec"]["image"]
    assert "one-gpu" in {
        e["meta"]["name"] for e in api.get("/api/v1/asset/compute").json()["entries"]
    }

    projects = api.get("/api/v1/org-unit/projects").json()["projects"]
    team_a = next(p for p in projects if p["name"] == "team-a")
    assert team_a["parentId"] == "research"
    assert api.get("/api/v1/org-unit/departments/research").status_code == 200
    assert api.get("/api/v1/org-unit/projects/no-such-project").status_code == 404

    clusters = api.get("/api/v1/clusters").json()
    assert [c["uuid"] for c in clusters] == ["local"]
    pools = {p["name"] for p in api.get("/v1/k8s/clusters/local/node-pools").json()}
    assert {"a100", "default"} <= pools


def test_an_application_exchanges_its_secret_for_a_token_the_api_accepts(
    suite: Suite, cli: Cli
) -> None:
    created = cli.json("application", "create", "api-ci")
    done = cli.run(
        "access-rule", "create", "--subject", "api-ci", "--subject-type", "application",
        "--role", "System administrator", "--scope", "tenant",
    )  # fmt: skip
    assert done.returncode == 0 or "already" in done.stderr, done.stdout + done.stderr
    with client(suite.api_url, None) as anonymous:
        body = {
            "grantType": "app_token",
            "AppId": created["clientId"],
            "AppSecret": created["clientSecret"],
        }
        granted = anonymous.post("/api/v1/token", json=body)
        assert granted.status_code == 200, granted.text
        assert problems(granted.json(), "TokenResponse") == []
        wrong = anonymous.post("/api/v1/token", json={**body, "AppSecret": "not-the-secret"})
        assert wrong.status_code == 401 and problems(wrong.json(), "Error") == []
    with client(suite.api_url, granted.json()["accessToken"]) as application:
        projects = application.get("/api/v1/org-unit/projects")
    assert projects.status_code == 200, projects.text
    assert "team-a" in {p["name"] for p in projects.json()["projects"]}


def test_a_running_workloads_pods_logs_and_objects_are_read_from_its_cluster(
    api: httpx.Client, suite: Suite
) -> None:
    body = {**BODIES["workspace"][1], "name": "api-pods"}
    created = api.post("/api/v1/workloads/workspaces", json=body).json()
    workload_id = created["workloadId"]
    try:
        wait_for_phase(api, workload_id, {"Running"})
        pods = api.get(f"/api/v1/workloads/{workload_id}/pods")
        assert pods.status_code == 200, pods.text
        (pod,) = pods.json()["pods"]
        assert problems(pod, "Pod1") == []
        assert pod["nodeName"] and pod["currentNodePool"] and pod["k8sPhase"] == "Running"

        token = str(api.headers["Authorization"]).removeprefix("Bearer ")
        with httpx.Client(base_url=suite.api_url, cookies={"berth_token": token}) as browser:
            page = browser.get(f"/console/workloads/{workload_id}")
        assert page.status_code == 200
        assert pod["nodeName"] in page.text and pod["name"] in page.text
        assert "StatefulSet/" in page.text  # the objects its cluster renders it into
        assert 'id="log"' in page.text or 'id="log-why"' in page.text
    finally:
        api.delete(f"/api/v1/workloads/workspaces/{workload_id}")


def test_assets_are_created_from_runai_bodies_as_the_cli_creates_them(
    api: httpx.Client, cli: Cli
) -> None:
    environment = {
        "meta": {
            "name": "api-jupyter",
            "scope": "project",
            "projectId": "team-a",
            "workloadSupportedTypes": {"workspace": True, "training": False},
        },
        "spec": {
            "image": "jupyter/base-notebook",
            "connections": [
                {
                    "name": "notebook",
                    "internalToolInfo": {"toolType": "jupyter-notebook", "containerPort": 8888},
                }
            ],
        },
    }
    password = {"meta": {"name": "api-git-pass"}, "spec": {"user": "ci", "password": "hunter2"}}
    try:
        made = api.post("/api/v1/asset/environment", json=environment)
        assert made.status_code == 202, made.text
        assert made.json()["meta"]["projectId"] == "team-a"
        again = api.post("/api/v1/asset/environment", json=environment)
        assert again.status_code == 409 and problems(again.json(), "Error") == []
        shown = cli.json("environment", "describe", "api-jupyter")
        assert shown["spec"]["workloadSupportedTypes"] == ["workspace"]
        assert shown["spec"]["tools"][0]["containerPort"] == 8888

        credential = api.post("/api/v1/asset/credentials/password", json=password)
        assert credential.status_code == 202, credential.text
        assert "hunter2" not in credential.text
        repository = {
            "meta": {"name": "api-repo"},
            "spec": {
                "repository": "https://example.com/code.git",
                "path": "/code",
                "passwordAssetId": credential.json()["meta"]["id"],
            },
        }
        source = api.post("/api/v1/asset/datasource/git", json=repository)
        assert source.status_code == 202, source.text
        assert cli.json("datasource", "describe", "api-repo")["spec"]["credential"] == (
            "api-git-pass"
        )
    finally:
        for kind, name in (
            ("datasource", "api-repo"),
            ("credential", "api-git-pass"),
            ("environment", "api-jupyter"),
        ):
            cli.run(kind, "delete", name)


def test_the_console_logs_in_by_email_from_the_suites_development_issuer(suite: Suite) -> None:
    with httpx.Client(base_url=suite.api_url, timeout=30) as browser:
        assert 'id="email"' in browser.get("/console/login").text
        done = browser.post(
            "/console/login",
            content="email=console-login%40example.com",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 303, done.text
        page = browser.get("/console/")
    # The services took the minted token: the page lists what this user may see.
    assert page.status_code == 200 and "console-login@example.com" in page.text
