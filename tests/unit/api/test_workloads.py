"""The gateway's translation of Run:ai's workload calls, with a scripted bus."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from berth.api.app import create_app
from berth.contracts.envelope import Actor, Event
from berth.contracts.events import (
    Issue,
    PolicyApprovedData,
    PolicyApprovedV1,
    PolicyRejectedData,
    PolicyRejectedV1,
    SubmissionRejectedData,
    SubmissionRejectedV1,
    WorkloadActionData,
    WorkloadActionDeniedData,
    WorkloadActionDeniedV1,
    WorkloadRef,
)
from berth.contracts.queries import WorkloadReply, WorkloadView
from berth.contracts.subjects import RPC_WORKLOADS_GET
from berth.contracts.workload import TrainingSubmission
from tests.unit.api.fakes import FakeBus, auth

pytestmark = pytest.mark.unit

BODY: dict[str, Any] = {
    "name": "train1",
    "projectId": "team-a",
    "clusterId": "local",
    "spec": {"image": "pytorch/pytorch", "compute": {"gpuDevicesRequest": 1}},
}
SYSTEM = Actor.system("test")


def ref(workload_id: str) -> WorkloadRef:
    return WorkloadRef(
        workloadId=workload_id,
        name="train1",
        kind="training",
        project="team-a",
        clusterId="local",
        namespace="berth-team-a",
        queue="team-a",
        createdBy="alice@example.com",
    )


def client(bus: FakeBus) -> TestClient:
    return TestClient(create_app(bus, timeout=2))


def test_a_request_without_a_bearer_token_is_401_in_runai_shape() -> None:
    response = client(FakeBus()).post("/api/v1/workloads/trainings", json=BODY)
    assert response.status_code == 401
    assert response.json()["code"] == 401 and response.json()["message"]


def test_a_training_is_published_with_the_callers_token_and_answered_with_policys_spec() -> None:
    bus = FakeBus()

    def answers(event: Event) -> list[Event]:
        approved = TrainingSubmission.model_validate(
            {**BODY, "spec": {**BODY["spec"], "backoffLimit": 6}}
        )
        data = PolicyApprovedData(workload=ref(event.subject), effectiveSpec=approved)
        return [
            PolicyApprovedV1(source="/berth/policy", subject=event.subject, actor=SYSTEM, data=data)
        ]

    bus.answers = answers
    headers = auth("alice@example.com")
    response = client(bus).post("/api/v1/workloads/trainings", json=BODY, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "train1" and body["requestedName"] == "train1"
    assert body["spec"]["backoffLimit"] == 6
    event, subject, authorization = bus.published[0]
    assert authorization == headers["Authorization"]
    assert event.actor.email == "alice@example.com"
    assert event.data["submission"] == {**BODY, "kind": "training"}
    assert subject == f"submission.requested.v1.{event.subject}"


def test_a_policy_violation_is_400_with_compliance_issues() -> None:
    bus = FakeBus()
    issue = Issue(field="compute.gpuDevicesRequest", details="must be at most 2 (tenant)")

    def answers(event: Event) -> list[Event]:
        data = PolicyRejectedData(workload=ref(event.subject), complianceIssues=[issue])
        return [
            PolicyRejectedV1(source="/berth/policy", subject=event.subject, actor=SYSTEM, data=data)
        ]

    bus.answers = answers
    response = client(bus).post("/api/v1/workloads/trainings", json=BODY, headers=auth())
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400
    assert body["message"].startswith("The workload request does not comply")
    assert body["complianceIssues"] == [issue.model_dump()]


def test_a_refusal_of_the_access_rules_is_403_with_the_reason() -> None:
    bus = FakeBus()
    reason = "forbidden: bob@example.com may not create trainings in project team-a"

    def answers(event: Event) -> list[Event]:
        data = SubmissionRejectedData(issues=[Issue(field="projectId", details=reason)])
        return [
            SubmissionRejectedV1(
                source="/berth/intake", subject=event.subject, actor=SYSTEM, data=data
            )
        ]

    bus.answers = answers
    response = client(bus).post("/api/v1/workloads/trainings", json=BODY, headers=auth())
    assert response.status_code == 403
    assert response.json() == {"code": 403, "message": reason}


def test_a_body_the_contract_refuses_is_400_naming_each_field_and_publishes_nothing() -> None:
    bus = FakeBus()
    bad = {**BODY, "spec": {"compute": {"gpuDevicesRequest": -1}, "imagee": "x"}}
    response = client(bus).post("/api/v1/workloads/trainings", json=bad, headers=auth())
    assert response.status_code == 400
    fields = {i["field"] for i in response.json()["complianceIssues"]}
    assert {"spec.compute.gpuDevicesRequest", "spec.imagee"} <= fields
    assert bus.published == []


def view(phase: str | None = "Running", kind: str = "training") -> WorkloadView:
    return WorkloadView(
        workloadId="w-1",
        name="train1",
        kind=kind,
        project="team-a",
        createdBy="alice@example.com",
        status=phase or "approved",
        phase=phase,
        submittedAt=datetime(2026, 1, 1, tzinfo=UTC),
        clusterId="local",
    )


def test_a_denied_suspend_is_403_with_ownerships_reason() -> None:
    bus = FakeBus()
    bus.replies[RPC_WORKLOADS_GET] = lambda _q: WorkloadReply(workload=view())
    reason = "only alice@example.com, who created it, may suspend it"

    def answers(event: Event) -> list[Event]:
        data = WorkloadActionDeniedData(
            **WorkloadActionData(action="suspend", name="train1", project="team-a").model_dump(),
            reason=reason,
        )
        return [
            WorkloadActionDeniedV1(
                source="/berth/ownership", subject=event.subject, actor=SYSTEM, data=data
            )
        ]

    bus.answers = answers
    response = client(bus).post(
        "/api/v1/workloads/trainings/w-1/suspend", headers=auth("bob@x.org")
    )
    assert response.status_code == 403
    assert response.json() == {"code": 403, "message": reason}


def test_a_workload_of_another_kind_is_not_found_under_this_kinds_path() -> None:
    bus = FakeBus()
    bus.replies[RPC_WORKLOADS_GET] = lambda _q: WorkloadReply(workload=view(kind="workspace"))
    response = client(bus).delete("/api/v1/workloads/trainings/w-1", headers=auth())
    assert response.status_code == 404
    assert bus.published == []


def test_inference_has_no_suspend() -> None:
    response = client(FakeBus()).post("/api/v1/workloads/inferences/w-1/suspend", headers=auth())
    assert response.status_code in (404, 405)


def test_unsupported_filters_are_400() -> None:
    response = client(FakeBus()).get(
        "/api/v1/workloads", params={"filterBy": "name=@foo"}, headers=auth()
    )
    assert response.status_code == 400
    assert "filterBy" in response.json()["details"]


def test_a_body_sent_without_a_json_content_type_is_read_as_json() -> None:
    bus = FakeBus()
    bus.answers = lambda event: [
        PolicyApprovedV1(
            source="/berth/policy",
            subject=event.subject,
            actor=SYSTEM,
            data=PolicyApprovedData(
                workload=ref(event.subject), effectiveSpec=TrainingSubmission.model_validate(BODY)
            ),
        )
    ]
    response = client(bus).post(
        "/api/v1/workloads/trainings",
        content=json.dumps(BODY),
        headers={**auth(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text


def test_a_count_reads_every_page_of_the_same_filtered_list() -> None:
    from berth.contracts.queries import WorkloadListReply, WorkloadQuery
    from berth.contracts.subjects import RPC_WORKLOADS_LIST

    one = WorkloadView(
        workloadId="w",
        name="n",
        kind="training",
        project="team-a",
        createdBy="alice@example.com",
        status="Running",
        submittedAt=datetime(2026, 1, 1, tzinfo=UTC),
    )

    def pages(query: WorkloadQuery) -> WorkloadListReply:
        assert query.project == "team-a" and query.kind == ["training"]
        assert query.offset is None
        if query.after is None:
            return WorkloadListReply(workloads=[one] * 1000, nextOffset=1000, nextCursor="c1")
        assert query.after == "c1"
        return WorkloadListReply(workloads=[one] * 3)

    bus = FakeBus()
    bus.replies[RPC_WORKLOADS_LIST] = pages
    response = client(bus).get(
        "/api/v1/workloads/count",
        params={"filterBy": ["projectName==team-a", "type==Training"]},
        headers=auth(),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"count": 1003}
    bad = client(bus).get("/api/v1/workloads/count", params={"filterBy": "name=@x"}, headers=auth())
    assert bad.status_code == 400
