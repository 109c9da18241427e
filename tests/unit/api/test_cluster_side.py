"""A workload on its cluster through the gateway: pods in Run:ai's shape, and the console's
workload page with pods, why it waits, logs and the rendered objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from berth.api.app import create_app
from berth.api.auth import COOKIE
from berth.api.cluster_side import why_waiting
from berth.contracts.queries import (
    LogsQuery,
    LogsReply,
    PodInfo,
    PodsReply,
    ProjectInfo,
    ProjectLookupReply,
    RenderReply,
    RenderRequest,
    WorkloadReply,
    WorkloadView,
)
from berth.contracts.subjects import (
    RPC_CATALOG_PROJECTS_LOOKUP,
    RPC_WORKLOADS_GET,
    rpc_logs,
    rpc_pods,
    rpc_render,
)
from tests.unit.api.fakes import FakeBus, auth, token

pytestmark = pytest.mark.unit

AT = datetime(2026, 1, 1, tzinfo=UTC)
SPEC: dict[str, Any] = {
    "name": "train1",
    "projectId": "team-a",
    "kind": "training",
    "spec": {"image": "pytorch/pytorch", "compute": {"gpuDevicesRequest": 2}},
}
WAITING = PodInfo(
    name="train1-0-abc",
    phase="Pending",
    gpus="2",
    reason="Unschedulable",
    message="no node in pools default has 2 free GPUs; most free: 1",
)


def view(**changes: Any) -> WorkloadView:
    base: dict[str, Any] = {
        "workloadId": "w-1",
        "name": "train1",
        "kind": "training",
        "project": "team-a",
        "createdBy": "alice@example.com",
        "status": "Pending",
        "phase": "Pending",
        "phaseMessage": WAITING.message,
        "submittedAt": AT,
        "clusterId": "local",
        "spec": SPEC,
    }
    return WorkloadView(**{**base, **changes})


def cluster(bus: FakeBus, pods: list[PodInfo]) -> list[RenderRequest]:
    rendered: list[RenderRequest] = []

    def render(request: RenderRequest) -> RenderReply:
        rendered.append(request)
        job = {"kind": "Job", "metadata": {"name": request.workload.name}}
        return RenderReply(manifests=[job])

    def logs(query: LogsQuery) -> LogsReply:
        return LogsReply(pod=query.pod or "train1-0-abc", lines=["epoch 1", "epoch 2"], offset=2)

    project = ProjectInfo(
        name="team-a", department="research", clusterId="local", namespace="runai-team-a",
        queue="team-a",
    )  # fmt: skip
    lookup = ProjectLookupReply(projects={"team-a": project})
    bus.replies.update(
        {
            RPC_WORKLOADS_GET: lambda _q: WorkloadReply(workload=view()),
            RPC_CATALOG_PROJECTS_LOOKUP: lambda _q: lookup,
            rpc_pods("local"): lambda _q: PodsReply(pods=pods),
            rpc_logs("local"): logs,
            rpc_render("local"): render,
        }
    )
    return rendered


def test_the_pods_of_a_workload_are_runais_pods_with_node_and_gpus() -> None:
    bus = FakeBus()
    placed = PodInfo(name="train1-0-def", phase="Running", node="node-1", nodePool="a100", gpus="2")
    cluster(bus, [placed, WAITING])
    response = TestClient(create_app(bus)).get("/api/v1/workloads/w-1/pods", headers=auth())
    assert response.status_code == 200, response.text
    running, pending = response.json()["pods"]
    assert running["nodeName"] == "node-1" and running["currentNodePool"] == "a100"
    assert running["allocatedResources"] == {"gpu": 2.0} and running["k8sPhase"] == "Running"
    assert pending["nodeName"] is None and pending["reason"] == "Unschedulable"
    assert {a[0] for a in bus.asked} >= {rpc_pods("local")}


def test_a_pending_workload_says_why_in_words() -> None:
    said = why_waiting(view(), [WAITING])
    assert said == (
        "Pod train1-0-abc waits because no node has room for it now: no node in pools default "
        "has 2 free GPUs; most free: 1."
    )
    held = view(phaseMessage="over quota: team-a would use 3 of 2 GPUs; held until …")
    assert why_waiting(held, []) == (
        "It waits for its project's GPU quota: team-a would use 3 of 2 GPUs; held until …."
    )
    assert why_waiting(view(phase="Running", status="Running"), []) is None


def test_the_workload_page_shows_pods_why_it_waits_logs_and_its_objects() -> None:
    bus = FakeBus()
    rendered = cluster(bus, [WAITING])
    http = TestClient(create_app(bus), cookies={COOKIE: token()})
    page = http.get("/console/workloads/w-1")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Why it waits:" in html and "no node has room for it now" in html
    assert "train1-0-abc" in html and "Unschedulable" in html
    assert "epoch 1\nepoch 2" in html
    assert "Job/train1" in html
    (request,) = rendered
    assert request.workload.namespace == "runai-team-a" and request.workload.queue == "team-a"
    assert request.submission.spec.compute is not None


def test_a_silent_cluster_leaves_the_page_with_the_reason() -> None:
    bus = FakeBus()
    cluster(bus, [])
    del bus.replies[rpc_pods("local")]

    async def silent(*_args: Any, **_kwargs: Any) -> Any:
        from berth.api.bus import Unavailable

        raise Unavailable("no service answers rpc.scheduler-adapter.pods.v1.local")

    original = bus.ask

    async def ask(subject: str, *args: Any, **kwargs: Any) -> Any:
        if subject == rpc_pods("local"):
            return await silent()
        return await original(subject, *args, **kwargs)

    bus.ask = ask  # type: ignore[method-assign]
    page = TestClient(create_app(bus), cookies={COOKIE: token()}).get("/console/workloads/w-1")
    assert page.status_code == 200
    assert "cluster local did not answer" in page.text
    response = TestClient(create_app(bus)).get("/api/v1/workloads/w-1/pods", headers=auth())
    assert response.status_code == 503 and response.json()["code"] == 503
