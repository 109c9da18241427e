"""Run:ai's policy calls over the policy service's queries, with a scripted bus."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from berth.api.app import create_app
from berth.api.bus import Refused
from berth.api.policies import nested
from berth.contracts.events import Issue
from berth.contracts.policy import (
    EffectivePolicy,
    EffectiveRule,
    PolicyApplyRequest,
    PolicyDocument,
    PolicyMeta,
    PolicyReply,
    ScopeRef,
    StoredPolicy,
)
from berth.contracts.subjects import (
    RPC_POLICY_APPLY,
    RPC_POLICY_DELETE,
    RPC_POLICY_EFFECTIVE,
    RPC_POLICY_GET,
)
from tests.unit.api.fakes import FakeBus, auth

pytestmark = pytest.mark.unit

META = {"scope": "project", "projectId": "team-b"}
RULES = {"compute": {"gpuDevicesRequest": {"max": 1}}}


def test_field_paths_nest_into_a_policy_documents_tree() -> None:
    assert nested([("compute.gpuDevicesRequest", {"max": 1}), ("image", {"required": True})]) == {
        "compute": {"gpuDevicesRequest": {"max": 1}},
        "image": {"required": True},
    }


def test_put_applies_with_the_callers_actor_and_get_adds_the_effective_policy() -> None:
    bus = FakeBus()
    stored = StoredPolicy(
        type="training",
        meta=PolicyMeta.model_validate(META),
        policy=PolicyDocument(rules=RULES),
        version=3,
    )
    bus.replies[RPC_POLICY_APPLY] = lambda _q: PolicyReply(policy=stored)
    bus.replies[RPC_POLICY_GET] = lambda _q: PolicyReply(policy=stored)
    team = ScopeRef(scope="project", id="team-b")
    bus.replies[RPC_POLICY_EFFECTIVE] = lambda _q: PolicyReply(
        effective=EffectivePolicy(
            type="training",
            branch=[ScopeRef(scope="tenant"), team],
            rules=[EffectiveRule(field="compute.gpuDevicesRequest", rule={"max": 1}, source=team)],
        )
    )
    web = TestClient(create_app(bus))
    put = web.put(
        "/api/v2/policy/trainings",
        json={"meta": META, "policy": {"rules": RULES}},
        headers=auth("admin@example.com"),
    )
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 3
    request = bus.asked[0][1]
    assert isinstance(request, PolicyApplyRequest) and request.actor.email == "admin@example.com"

    got = web.get("/api/v2/policy/trainings", params=META, headers=auth()).json()
    assert got["policy"]["rules"] == RULES
    assert got["effective"]["rules"] == RULES
    assert got["effectiveRules"]["rules"][0]["source"] == {"scope": "project", "id": "team-b"}


def test_a_refused_policy_is_400_naming_each_problem() -> None:
    bus = FakeBus()
    issue = Issue(field="rules.compute.gpuDevicesRequest", details="min 3 is above max 1")
    bus.replies[RPC_POLICY_APPLY] = lambda _q: PolicyReply(ok=False, issues=[issue])
    response = TestClient(create_app(bus)).put(
        "/api/v2/policy/trainings", json={"meta": META, "policy": {}}, headers=auth()
    )
    assert response.status_code == 400
    assert issue.details in response.json()["details"]


def test_a_query_refused_by_the_access_rules_is_403_with_the_reason() -> None:
    bus = FakeBus()
    reason = "forbidden: bob@example.com may not delete policies in project team-b"

    def refuse(_q: object) -> PolicyReply:
        raise Refused("bad-request", reason, [])

    bus.replies[RPC_POLICY_DELETE] = refuse
    response = TestClient(create_app(bus)).delete(
        "/api/v2/policy/trainings", params=META, headers=auth("bob@example.com")
    )
    assert response.status_code == 403
    assert response.json() == {"code": 403, "message": reason}


def test_the_policy_list_is_runais_with_the_filters_passed_on() -> None:
    from datetime import UTC, datetime

    from berth.contracts.policy import PolicyListReply, PolicyListRequest
    from berth.contracts.subjects import RPC_POLICY_LIST

    asked: list[PolicyListRequest] = []
    at = datetime(2026, 1, 1, tzinfo=UTC)
    stored = StoredPolicy(
        type="training",
        meta=PolicyMeta(scope="project", projectId="team-b"),
        policy=PolicyDocument(rules=RULES),
        version=4,
        updatedBy="admin@example.com",
        updatedAt=at,
    )

    def answer(request: PolicyListRequest) -> PolicyListReply:
        asked.append(request)
        return PolicyListReply(policies=[stored])

    bus = FakeBus()
    bus.replies[RPC_POLICY_LIST] = answer
    http = TestClient(create_app(bus))
    response = http.get(
        "/api/v2/policy", params={"workloadType": "Training", "scope": "project"}, headers=auth()
    )
    assert response.status_code == 200, response.text
    (entry,) = response.json()["policies"]
    assert entry["type"] == "training" and entry["version"] == 4
    assert entry["meta"]["id"] == "training-project-team-b"
    assert entry["meta"]["projectId"] == "team-b"
    assert entry["meta"]["updatedBy"] == "admin@example.com"
    assert (asked[0].type, asked[0].scope) == ("training", "project")
    bad = http.get("/api/v2/policy", params={"workloadType": "Batch"}, headers=auth())
    assert bad.status_code == 400
