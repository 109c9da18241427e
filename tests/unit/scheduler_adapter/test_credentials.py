"""The cluster side of credentials: which Secrets objects reference, the simulated cluster's
Secrets (pods wait for a missing one), and delivery before the objects are applied."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from berth.contracts.catalog import (
    CredentialDeliveryReply,
    CredentialDeliveryRequest,
    DeliveredCredential,
    MissingCredential,
)
from berth.contracts.subjects import RPC_CATALOG_CREDENTIALS_DELIVER
from berth.scheduler_adapter.backend import referenced_secrets
from berth.scheduler_adapter.credentials import CredentialDelivery, agent_keys, secret_object
from berth.scheduler_adapter.simulation import Inventory
from berth.scheduler_adapter.simulation.cluster import SimulatedCluster
from berth.shared.keys import SealingKeys, seal
from tests.unit.scheduler_adapter.adapter_builders import NAMESPACE, manifests
from tests.unit.scheduler_adapter.adapter_recorder import simulated

pytestmark = pytest.mark.unit

TOKEN_ENV = {"environmentVariables": [{"name": "T", "credential": {"name": "tok", "key": "t"}}]}


def test_referenced_secrets_cover_env_volumes_and_data_source_credentials() -> None:
    objects = manifests(
        "training",
        "refs",
        extra={
            **TOKEN_ENV,
            "storage": {
                "git": [
                    {
                        "repository": "https://g/r.git",
                        "path": "/c",
                        "passwordSecret": "berth-cred-git",
                    }
                ],
                "s3": [{"bucket": "b", "path": "/s3", "accessKeySecret": "berth-cred-s3"}],
                "secretVolume": [{"secret": "plain-secret", "mountPath": "/etc/x"}],
            },
        },
    )
    assert referenced_secrets(objects) == {
        "berth-cred-tok",
        "berth-cred-git",
        "berth-cred-s3",
        "plain-secret",
    }


def test_referenced_secrets_are_read_from_every_pod_template_and_nothing_else() -> None:
    def env(credential: str) -> list[dict[str, Any]]:
        return [{"name": "T", "credential": {"name": credential, "key": "t"}}]

    # Each Kubeflow role's template, whether or not it wants pods now.
    distributed = manifests(
        "distributed",
        "roles",
        gpus=1,
        extra={"numWorkers": 2, "environmentVariables": env("worker")},
        top={
            "masterSpecSameAsWorker": False,
            "masterSpec": {"image": "master:1", "environmentVariables": env("master")},
        },
    )
    assert referenced_secrets(distributed) == {"berth-cred-master", "berth-cred-worker"}
    suspended = manifests("training", "idle", extra=TOKEN_ENV)
    suspended[0]["spec"]["parallelism"] = 0
    # A Secret named outside a pod template is no pod's: not asked for.
    stray = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "stray", "namespace": NAMESPACE},
        "spec": {"secret": {"secretName": "berth-cred-stray"}},
    }
    assert referenced_secrets([*suspended, stray]) == {"berth-cred-tok"}


async def test_pods_wait_for_a_missing_credential_secret_and_start_once_given() -> None:
    async with simulated() as (cluster, rec):
        await cluster.apply(manifests("training", "needs", runtime=100_000, extra=TOKEN_ENV))
        await rec.wait_until(
            "wl-needs", lambda s: any(p.reason == "CreateContainerConfigError" for p in s.pods)
        )
        [pod] = rec.last("wl-needs").pods
        assert (pod.phase, pod.ready, pod.message) == (
            "Pending",
            False,
            'secret "berth-cred-tok" not found',
        )
        assert cluster.secret(NAMESPACE, "berth-cred-tok") is None
        await cluster.apply_secrets([secret_object(NAMESPACE, "berth-cred-tok", "c-1", {"t": "v"})])
        await rec.wait_for("wl-needs", "Running")
        assert cluster.secret(NAMESPACE, "berth-cred-tok") == {"t": "v"}


async def test_a_secret_given_first_lets_the_pods_start_at_once() -> None:
    async with simulated() as (cluster, rec):
        await cluster.apply_secrets([secret_object(NAMESPACE, "berth-cred-tok", "c-1", {"t": "v"})])
        await cluster.apply(manifests("training", "ready", runtime=100_000, extra=TOKEN_ENV))
        await rec.wait_for("wl-ready", "Running")
        reasons = {p.reason for s in rec.history["wl-ready"] for p in s.pods}
        assert "CreateContainerConfigError" not in reasons


@dataclass
class Reply:
    data: bytes


class FakeCatalog:
    """Answers delivery requests as the catalog does: sealed to the key it knows."""

    def __init__(self, key: SealingKeys, values: dict[str, dict[str, str]]) -> None:
        self.key = key
        self.values = values
        self.asked: list[CredentialDeliveryRequest] = []

    async def request(self, subject: str, data: bytes, **_: Any) -> Reply:
        assert subject == RPC_CATALOG_CREDENTIALS_DELIVER
        request = CredentialDeliveryRequest.model_validate_json(data)
        self.asked.append(request)
        reply = CredentialDeliveryReply(
            keyId=self.key.key_id,
            credentials=[
                DeliveredCredential(
                    secretName=name,
                    credentialId=f"id-{name}",
                    sealedValues=seal(self.key.public_key, json.dumps(self.values[name]).encode()),
                )
                for name in request.secretNames
                if name in self.values
            ],
            missing=[
                MissingCredential(secretName=name, reason="no value")
                for name in request.secretNames
                if name not in self.values
            ],
        )
        return Reply(reply.model_dump_json().encode())


class Recording(SimulatedCluster):
    def __init__(self) -> None:
        super().__init__(Inventory.default())
        self.calls: list[str] = []

    async def apply(self, objects: list[dict[str, Any]]) -> None:
        self.calls.append("apply")
        await super().apply(objects)

    async def apply_secrets(self, secrets: list[dict[str, Any]]) -> None:
        self.calls.append("secrets")
        await super().apply_secrets(secrets)


async def test_secrets_are_delivered_before_the_objects_and_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = agent_keys(tmp_path, "local")
    catalog = FakeCatalog(keys, {"berth-cred-tok": {"t": "hf_value"}})
    inner = Recording()
    delivery = CredentialDelivery(inner, nc=lambda: catalog, cluster_id="local", keys=keys)
    objects = manifests(
        "training",
        "both",
        extra={
            "environmentVariables": [
                {"name": "T", "credential": {"name": "tok", "key": "t"}},
                {"name": "U", "credential": {"name": "none", "key": "t"}},
            ]
        },
    )
    await delivery.apply(objects)
    assert inner.calls == ["secrets", "apply"]
    assert [(r.clusterId, r.namespace, r.secretNames) for r in catalog.asked] == [
        ("local", NAMESPACE, ["berth-cred-none", "berth-cred-tok"])
    ]
    assert inner.secret(NAMESPACE, "berth-cred-tok") == {"t": "hf_value"}
    assert inner.secret(NAMESPACE, "berth-cred-none") is None
    assert "hf_value" not in caplog.text
    assert "berth-cred-none" in caplog.text  # the missing one is reported by name


async def test_objects_adopted_at_a_restart_get_their_secrets_without_an_apply(
    tmp_path: Path,
) -> None:
    # Found in the cluster by a restarted agent: not applied again, but a Secret that was
    # missing when it stopped (or whose value changed meanwhile) is delivered, and refreshed later.
    keys = agent_keys(tmp_path, "local")
    catalog = FakeCatalog(keys, {"berth-cred-tok": {"t": "v1"}})
    inner = Recording()
    delivery = CredentialDelivery(inner, nc=lambda: catalog, cluster_id="local", keys=keys)
    await delivery.adopt(
        manifests("training", "one", extra=TOKEN_ENV)
        + manifests("training", "two", extra=TOKEN_ENV)
    )
    assert inner.calls == ["secrets"]
    assert len(catalog.asked) == 1  # one request for the namespace, not one per workload
    assert inner.secret(NAMESPACE, "berth-cred-tok") == {"t": "v1"}
    assert inner.workload_count == 0


async def test_a_box_sealed_to_another_key_is_not_applied(tmp_path: Path) -> None:
    keys = agent_keys(tmp_path / "agent", "local")
    stranger = agent_keys(tmp_path / "stranger", "local")
    catalog = FakeCatalog(stranger, {"berth-cred-tok": {"t": "v"}})
    inner = Recording()
    delivery = CredentialDelivery(inner, nc=lambda: catalog, cluster_id="local", keys=keys)
    await delivery.apply(manifests("training", "other", extra=TOKEN_ENV))
    assert inner.calls == ["apply"]
    assert inner.secret(NAMESPACE, "berth-cred-tok") is None


async def test_the_reported_config_carries_the_agents_public_key(tmp_path: Path) -> None:
    keys = agent_keys(tmp_path, "local")
    delivery = CredentialDelivery(Recording(), nc=lambda: None, cluster_id="local", keys=keys)
    config = await delivery.read_config()
    assert config["credentialKey"] == {"keyId": keys.key_id, "publicKey": keys.public_key}
    assert config["gpus"] == 32
