"""``POST /api/v1/token``: an application's secret exchanged through the catalog's query."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from berth.api.app import create_app
from berth.contracts.applications import ApplicationTokenReply, ApplicationTokenRequest
from berth.contracts.subjects import RPC_CATALOG_APPLICATIONS_TOKEN
from tests.unit.api.fakes import FakeBus

pytestmark = pytest.mark.unit


def catalog(bus: FakeBus) -> None:
    def answer(request: ApplicationTokenRequest) -> ApplicationTokenReply:
        if (request.clientId, request.clientSecret) == ("ci", "s3cret"):
            return ApplicationTokenReply(accessToken="a.b.c", expiresIn=3600)
        return ApplicationTokenReply(error="unknown client id or wrong secret")

    bus.replies[RPC_CATALOG_APPLICATIONS_TOKEN] = answer


@pytest.mark.parametrize(
    "body",
    [
        {"grantType": "app_token", "AppId": "ci", "AppSecret": "s3cret"},
        {"grantType": "app_token", "appID": "ci", "appSecret": "s3cret"},
        {"grantType": "client_credentials", "clientId": "ci", "clientSecret": "s3cret"},
    ],
)
def test_an_applications_secret_is_exchanged_without_a_bearer_token(body: dict[str, str]) -> None:
    bus = FakeBus()
    catalog(bus)
    response = TestClient(create_app(bus)).post("/api/v1/token", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"accessToken": "a.b.c", "expiresIn": 3600}
    ((subject, _query, authorization),) = bus.asked
    assert subject == RPC_CATALOG_APPLICATIONS_TOKEN and authorization == ""


def test_a_wrong_secret_is_401_and_an_unknown_grant_400_in_runais_error_shape() -> None:
    bus = FakeBus()
    catalog(bus)
    http = TestClient(create_app(bus))
    body = {"grantType": "app_token", "AppId": "ci", "AppSecret": "x"}
    wrong = http.post("/api/v1/token", json=body)
    assert wrong.status_code == 401
    assert wrong.json() == {
        "code": 401,
        "message": "Unauthorized",
        "details": "unknown client id or wrong secret",
    }
    grant = http.post("/api/v1/token", json={"grantType": "password", "username": "a"})
    assert grant.status_code == 400 and grant.json()["code"] == 400
    missing = http.post("/api/v1/token", json={"grantType": "app_token", "AppId": "ci"})
    assert missing.status_code == 400
    assert bus.asked == [bus.asked[0]]
