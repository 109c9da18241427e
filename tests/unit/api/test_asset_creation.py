"""Run:ai's asset creation bodies, as the catalog's put query the CLI sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from nacl.public import PrivateKey

from berth.api.app import create_app
from berth.contracts.catalog import (
    AssetListReply,
    AssetPutRequest,
    AssetReply,
    AssetView,
    CatalogKeyReply,
)
from berth.contracts.events import PublicKey
from berth.contracts.subjects import (
    RPC_CATALOG_ASSETS_LIST,
    RPC_CATALOG_ASSETS_PUT,
    RPC_CATALOG_KEYS_GET,
)
from berth.shared.keys import SealingKeys, encode
from tests.unit.api.fakes import FakeBus, auth

pytestmark = pytest.mark.unit

AT = datetime(2026, 1, 1, tzinfo=UTC)


def catalog(bus: FakeBus, error: str | None = None) -> list[AssetPutRequest]:
    puts: list[AssetPutRequest] = []

    def put(request: AssetPutRequest) -> AssetReply:
        puts.append(request)
        if error:
            return AssetReply(error=error)
        view = AssetView(
            id=f"id-{request.name}", kind=request.kind, name=request.name,
            scope=request.scope, scopeName=request.scopeName, spec=request.spec, createdAt=AT,
            createdBy="alice@example.com",
        )  # fmt: skip
        return AssetReply(asset=view)

    bus.replies[RPC_CATALOG_ASSETS_PUT] = put
    return puts


def post(bus: FakeBus, path: str, body: dict[str, Any]) -> Any:
    return TestClient(create_app(bus)).post(f"/api/v1/asset{path}", json=body, headers=auth())


def test_an_environment_becomes_the_catalogs_environment_in_its_scope() -> None:
    bus = FakeBus()
    puts = catalog(bus)
    body = {
        "meta": {
            "name": "jupyter",
            "scope": "project",
            "projectId": "team-a",
            "workloadSupportedTypes": {"workspace": True, "training": False},
        },
        "spec": {
            "image": "jupyter/base-notebook",
            "imagePullPolicy": "IfNotPresent",
            "connections": [
                {
                    "name": "notebook",
                    "internalToolInfo": {"toolType": "jupyter-notebook", "containerPort": 8888},
                }
            ],
        },
    }
    response = post(bus, "/environment", body)
    assert response.status_code == 202, response.text
    assert (
        response.json()["meta"] | {"projectId": "team-a", "scope": "project"}
        == (response.json()["meta"])
    )
    (request,) = puts
    assert (request.kind, request.name, request.scope, request.scopeName) == (
        "environment", "jupyter", "project", "team-a",
    )  # fmt: skip
    assert request.spec == {
        "image": "jupyter/base-notebook",
        "imagePullPolicy": "IfNotPresent",
        "tools": [{"name": "notebook", "toolType": "jupyter-notebook", "containerPort": 8888}],
        "workloadSupportedTypes": ["workspace"],
    }
    assert request.actor.email == "alice@example.com"


def test_a_git_data_source_names_its_credential_by_the_assets_id() -> None:
    bus = FakeBus()
    puts = catalog(bus)
    git = AssetView(
        id="cred-7", kind="credential", name="git-pass", scope="tenant", createdAt=AT,
        spec={"type": "password"},
    )  # fmt: skip
    bus.replies[RPC_CATALOG_ASSETS_LIST] = lambda _q: AssetListReply(assets=[git])
    spec = {"repository": "https://example.com/r.git", "path": "/code", "passwordAssetId": "cred-7"}
    response = post(bus, "/datasource/git", {"meta": {"name": "repo"}, "spec": spec})
    assert response.status_code == 202, response.text
    assert puts[0].spec == {
        "type": "git",
        "credential": "git-pass",
        "volume": {"repository": "https://example.com/r.git", "path": "/code"},
    }


def test_a_credentials_values_cross_the_bus_only_sealed_to_the_catalogs_key() -> None:
    bus = FakeBus()
    puts = catalog(bus)
    private = PrivateKey.generate()
    keys = SealingKeys({"k1": bytes(private)})
    public = PublicKey(keyId="k1", publicKey=encode(bytes(private.public_key)))
    bus.replies[RPC_CATALOG_KEYS_GET] = lambda _q: CatalogKeyReply(key=public)
    spec = {"accessKeyId": "AK", "secretAccessKey": "the-secret-key"}
    body = {"meta": {"name": "s3-key"}, "spec": spec}
    response = post(bus, "/credentials/access-key", body)
    assert response.status_code == 202, response.text
    (request,) = puts
    assert request.spec == {"type": "access-key"} and not request.secretValues
    assert "the-secret-key" not in request.model_dump_json()
    assert request.keyId == "k1" and request.sealedValues is not None
    opened = json.loads(keys.open("k1", request.sealedValues))
    assert opened == {"AccessKeyId": "AK", "SecretKey": "the-secret-key"}


def test_the_catalogs_refusals_are_runais_409_and_400() -> None:
    bus = FakeBus()
    catalog(bus, error='compute "one-gpu" already exists')
    body = {"meta": {"name": "one-gpu"}, "spec": {"gpuDevicesRequest": 1}}
    exists = post(bus, "/compute", body)
    assert exists.status_code == 409 and exists.json()["code"] == 409
    catalog(bus, error="spec: gpuDevicesRequest: Input should be greater than or equal to 0")
    bad = post(bus, "/compute", {"meta": {"name": "neg"}, "spec": {"gpuDevicesRequest": -1}})
    assert bad.status_code == 400 and "gpuDevicesRequest" in bad.json()["details"]
    scoped = post(bus, "/compute", {"meta": {"name": "x", "scope": "project"}, "spec": {}})
    assert scoped.status_code == 400 and "projectId" in scoped.json()["details"]
