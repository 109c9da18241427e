"""The console's pure parts: the form's policy view, the trace waterfall, login."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from berth.api.app import create_app
from berth.api.console import form_fields, waterfall
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
