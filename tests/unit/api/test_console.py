"""The console's pure parts: the form's policy view, the trace waterfall, login."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from berth.api.app import create_app
from berth.api.console import cluster_choices, form_fields, waterfall
from berth.contracts.events import ClusterConfig, ClusterRecord
from berth.contracts.policy import EffectiveDefault, EffectivePolicy, EffectiveRule, ScopeRef
from tests.unit.api.fakes import FakeBus

pytestmark = pytest.mark.unit


def test_the_form_fills_policy_defaults_and_shows_locked_fields_with_their_scope() -> None:
    team = ScopeRef(scope="project", id="team-b")
    effective = EffectivePolicy(
        type="training",
        branch=[ScopeRef(scope="tenant"), team],
        defaults=[EffectiveDefault(field="imagePullPolicy", value="IfNotPresent", source=team)],
        rules=[
            EffectiveRule(field="imagePullPolicy", rule={"canEdit": False}, source=team),
            EffectiveRule(field="compute.gpuDevicesRequest", rule={"max": 2}, source=team),
        ],
    )
    fields = {f["path"]: f for f in form_fields("training", effective)}
    assert fields["imagePullPolicy"]["value"] == "IfNotPresent"
    assert (
        fields["imagePullPolicy"]["locked"]
        and fields["imagePullPolicy"]["source"] == "project team-b"
    )
    assert fields["compute.gpuDevicesRequest"]["hint"] == "max 2"
    assert not fields["image"]["locked"] and fields["image"]["value"] == ""


def test_the_waterfall_places_each_span_in_the_traces_time_and_tree() -> None:
    spans = [
        {
            "spanId": "a",
            "parentId": None,
            "name": "submit",
            "service": "api",
            "start": 0,
            "end": 100,
        },
        {
            "spanId": "b",
            "parentId": "a",
            "name": "accept",
            "service": "intake",
            "start": 50,
            "end": 100,
        },
    ]
    rows = waterfall(spans)
    assert [(r["name"], r["depth"], r["left"], r["width"]) for r in rows] == [
        ("submit", 0, 0.0, 100.0),
        ("accept", 1, 50.0, 50.0),
    ]


def test_pages_without_a_token_go_to_login_and_the_login_page_serves_its_script() -> None:
    web = TestClient(create_app(FakeBus()), follow_redirects=False)
    assert web.get("/console/").headers["location"] == "/console/login"
    login = web.get("/console/login")
    assert login.status_code == 200 and "console.js" in login.text
    assert web.get("/console/static/console.js").status_code == 200


def test_the_workloads_page_lists_a_rejected_submission_of_an_unknown_kind() -> None:
    from datetime import UTC, datetime

    from berth.contracts.catalog import AssetListReply
    from berth.contracts.queries import WorkloadListReply, WorkloadView
    from berth.contracts.subjects import RPC_CATALOG_ASSETS_LIST, RPC_WORKLOADS_LIST
    from tests.unit.api.fakes import token

    bus = FakeBus()
    rejected = WorkloadView(
        workloadId="w-9",
        name="odd",
        kind="bogus",
        project="team-a",
        createdBy="a@example.com",
        status="rejected",
        submittedAt=datetime(2026, 1, 1, tzinfo=UTC),
    )
    bus.replies[RPC_WORKLOADS_LIST] = lambda _q: WorkloadListReply(workloads=[rejected])
    bus.replies[RPC_CATALOG_ASSETS_LIST] = lambda _q: AssetListReply()
    web = TestClient(create_app(bus), cookies={"berth_token": token()})
    page = web.get("/console/")
    assert page.status_code == 200 and "odd" in page.text


def _cluster(cluster_id: str, connected: bool = True) -> ClusterRecord:
    return ClusterRecord(
        clusterId=cluster_id,
        backend="simulated",
        config=ClusterConfig(),
        reportedAt=datetime(2026, 1, 1, tzinfo=UTC),
        connected=connected,
    )


def test_the_form_offers_the_projects_cluster_else_a_connected_one() -> None:
    edge, local = _cluster("edge", connected=False), _cluster("local")
    chosen = {c["id"]: c["selected"] for c in cluster_choices([edge, local], None)}
    assert chosen == {"edge": False, "local": True}
    chosen = {c["id"]: c["selected"] for c in cluster_choices([edge, local], "edge")}
    assert chosen == {"edge": True, "local": False}  # the project's own, even while away
    assert [c["connected"] for c in cluster_choices([edge, local], "gone")] == [False, True]


def test_with_the_development_issuer_the_console_logs_in_by_email(tmp_path: Path) -> None:
    import jwt

    from berth.api.auth import COOKIE, DevIssuer
    from berth.shared.identity import SigningKey

    key = SigningKey.ensure(tmp_path / "dev-issuer.key")
    dev = DevIssuer(key, "urn:berth:development", "berth")
    http = TestClient(create_app(FakeBus(), dev_issuer=dev), follow_redirects=False)
    assert 'id="email"' in http.get("/console/login").text
    done = http.post(
        "/console/login",
        content="email=bob%40example.com&groups=ml, admins",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/"
    claims = jwt.decode(
        done.cookies[COOKIE], jwt.PyJWK(key.public_jwk).key, ["EdDSA"],
        audience="berth", issuer="urn:berth:development",
    )  # fmt: skip
    assert claims["email"] == "bob@example.com" and claims["groups"] == ["ml", "admins"]
    refused = http.post(
        "/console/login",
        content="email=bob",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 400 and "login-error" in refused.text


def test_with_an_identity_provider_the_console_asks_for_a_token() -> None:
    http = TestClient(create_app(FakeBus()))
    page = http.get("/console/login").text
    assert 'id="email"' not in page and 'id="token"' in page and "berth login" in page
    assert http.post("/console/login", content="email=a%40b.c").status_code == 404
