"""Credential values from the CLI's sealed request to a Secret on the cluster, with the catalog,
cluster-sync and the scheduler-adapter (simulated cluster) on real NATS and PostgreSQL: the
agent's key reaches the catalog through cluster-sync, a workload's Secret is delivered before it
starts, again when its value changes and after the agent restarts with an empty cluster, a
credential without a value keeps its workload from starting until it gets one, and no message
on the bus ever holds a value."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.msg import Msg

from berth.catalog.bootstrap import build as build_catalog
from berth.catalog.config import CatalogSettings
from berth.cluster_sync.bootstrap import build as build_cluster_sync
from berth.cluster_sync.config import ClusterSyncSettings
from berth.contracts.catalog import (
    AssetPutRequest,
    AssetReply,
    CatalogKeyReply,
    CatalogKeyRequest,
    CredentialDeliveryReply,
    CredentialDeliveryRequest,
)
from berth.contracts.envelope import Actor
from berth.contracts.events import PolicyApprovedData, PolicyApprovedV1, WorkloadRef
from berth.contracts.roles import POLICY, source_of
from berth.contracts.subjects import (
    RPC_CATALOG_ASSETS_PUT,
    RPC_CATALOG_CREDENTIALS_DELIVER,
    RPC_CATALOG_KEYS_GET,
)
from berth.scheduler_adapter.bootstrap import build as build_adapter
from berth.scheduler_adapter.config import SchedulerAdapterSettings
from berth.scheduler_adapter.credentials import agent_keys
from berth.scheduler_adapter.simulation import Inventory
from berth.scheduler_adapter.simulation.cluster import SimulatedCluster
from berth.shared.keys import seal
from berth.shared.service import Service
from tests.identity import ask, publish
from tests.integration.shared.helpers import eventually

pytestmark = pytest.mark.integration

ADMIN = Actor(email="admin@example.com")
SECRET = "tok-do-not-leak-" + uuid.uuid4().hex
PROJECT = "cred-" + uuid.uuid4().hex[:8]
NAMESPACE = f"berth-{PROJECT}"


@contextlib.asynccontextmanager
async def running(service: Service) -> AsyncIterator[Service]:
    await service.app.start()
    try:
        yield service
    finally:
        await service.app.stop()


def fast(settings_type: Any, nats_url: str, database_url: str, **more: Any) -> Any:
    return settings_type(
        nats_url=nats_url,
        database_url=database_url,
        batch_size=50,
        fetch_timeout=0.05,
        outbox_poll_seconds=0.2,
        **more,
    )


def adapter(nats_url: str, database_url: str, keys: Path, cluster: SimulatedCluster) -> Service:
    settings = fast(SchedulerAdapterSettings, nats_url, database_url, keys_dir=keys)
    return build_adapter(settings, backend=cluster)


async def put(nc: Any, kind: str, name: str, spec: dict[str, Any], **more: Any) -> None:
    request = AssetPutRequest(actor=ADMIN, kind=kind, name=name, spec=spec, **more)
    reply = await ask(nc, RPC_CATALOG_ASSETS_PUT, request, AssetReply, timeout=10)
    assert reply.error is None, reply.error


async def sealed(nc: Any, values: dict[str, str]) -> dict[str, str]:
    key = (
        await ask(nc, RPC_CATALOG_KEYS_GET, CatalogKeyRequest(), CatalogKeyReply, timeout=10)
    ).key
    return {"sealedValues": seal(key.publicKey, json.dumps(values).encode()), "keyId": key.keyId}


async def deliver(nc: Any, cluster: str, names: list[str]) -> CredentialDeliveryReply:
    request = CredentialDeliveryRequest(clusterId=cluster, namespace=NAMESPACE, secretNames=names)
    return await ask(
        nc, RPC_CATALOG_CREDENTIALS_DELIVER, request, CredentialDeliveryReply, timeout=10
    )


def approved(name: str, credential: str) -> PolicyApprovedV1:
    workload = WorkloadRef(
        workloadId=uuid.uuid4().hex,
        name=name,
        kind="training",
        project=PROJECT,
        clusterId="local",
        namespace=NAMESPACE,
        queue=PROJECT,
        createdBy=ADMIN.email,
    )
    spec = {
        "image": "busybox",
        "environmentVariables": [
            {"name": "TOKEN", "credential": {"name": credential, "key": "token"}}
        ],
        "annotations": [{"name": "berth.dev/sim-runtime-seconds", "value": "100000"}],
    }
    return PolicyApprovedV1(
        source=source_of(POLICY),
        subject=workload.workloadId,
        actor=ADMIN,
        data=PolicyApprovedData.model_validate(
            {
                "workload": workload.model_dump(),
                "effectiveSpec": {
                    "kind": "training",
                    "name": name,
                    "projectId": PROJECT,
                    "spec": spec,
                },
            }
        ),
    )


def pods_of(cluster: SimulatedCluster, event: PolicyApprovedV1) -> list[tuple[str, str]]:
    return [(pod.phase, pod.reason) for pod in cluster.pods(NAMESPACE, event.subject)]


async def test_credentials_reach_the_cluster_sealed_to_its_agent(
    nats_url: str, database_url: str, nc: Any, tmp_path: Path
) -> None:
    seen: list[Msg] = []

    async def scan(msg: Msg) -> None:
        seen.append(msg)

    everything = await nc.subscribe(">", cb=scan)
    catalog = build_catalog(
        fast(CatalogSettings, nats_url, database_url, keys_dir=tmp_path / "catalog")
    )
    sync = build_cluster_sync(fast(ClusterSyncSettings, nats_url, database_url))
    agent_key = agent_keys(tmp_path / "agent", "local").key_id
    first = SimulatedCluster(Inventory.default(), speed=50)
    async with running(catalog), running(sync):
        await put(nc, "project", PROJECT, {})
        await put(
            nc,
            "credential",
            "tok",
            {"type": "generic-secret", "keys": ["token"]},
            scope="project",
            scopeName=PROJECT,
            **await sealed(nc, {"token": SECRET}),
        )
        await put(nc, "credential", "empty", {"type": "generic-secret", "keys": ["token"]})
        async with running(adapter(nats_url, database_url, tmp_path / "agent", first)):

            async def key_known() -> bool:
                return (await deliver(nc, "local", [])).keyId == agent_key

            # The agent's report went through cluster-sync to the catalog. Beyond ack_wait
            # (30 s), here and below: the services of an earlier test may have left a pull open
            # on a durable these share; an event it takes comes back only after ack_wait.
            await eventually(key_known, timeout=60)

            # Values come sealed to the cluster's key only, whoever asks.
            other = await deliver(nc, "elsewhere", ["berth-cred-tok"])
            assert other.error == 'cluster "elsewhere" has not reported a credential key yet'

            uses_tok, uses_empty = approved("uses-tok", "tok"), approved("uses-empty", "empty")
            await publish(nc.jetstream(), uses_tok)
            await publish(nc.jetstream(), uses_empty)
            await eventually(
                lambda: first.secret(NAMESPACE, "berth-cred-tok") == {"token": SECRET}, timeout=60
            )
            await eventually(lambda: ("Running", "") in pods_of(first, uses_tok), timeout=20)
            # No value to deliver: the pods wait, as a kubelet keeps them without their Secret.
            await eventually(
                lambda: ("Pending", "CreateContainerConfigError") in pods_of(first, uses_empty),
                timeout=60,
            )
            assert first.secret(NAMESPACE, "berth-cred-empty") is None
            empty = await deliver(nc, "local", ["berth-cred-empty"])
            assert [m.reason for m in empty.missing] == ['credential "empty" has no value']

            # A changed value reaches the Secret already made of it.
            await put(
                nc,
                "credential",
                "tok",
                {"type": "generic-secret", "keys": ["token"]},
                scope="project",
                scopeName=PROJECT,
                update=True,
                **await sealed(nc, {"token": SECRET + "-new"}),
            )
            await eventually(
                lambda: first.secret(NAMESPACE, "berth-cred-tok") == {"token": SECRET + "-new"},
                timeout=60,
            )

            # Given a value later, the Secret follows and the waiting workload starts.
            await put(
                nc,
                "credential",
                "empty",
                {"type": "generic-secret", "keys": ["token"]},
                update=True,
                **await sealed(nc, {"token": SECRET + "-2"}),
            )
            await eventually(
                lambda: first.secret(NAMESPACE, "berth-cred-empty") == {"token": SECRET + "-2"},
                timeout=60,
            )
            await eventually(lambda: ("Running", "") in pods_of(first, uses_empty), timeout=20)

        # A restarted agent with a new, empty cluster gets the Secret again before re-applying.
        second = SimulatedCluster(Inventory.default(), speed=50)
        async with running(adapter(nats_url, database_url, tmp_path / "agent", second)):
            await eventually(
                lambda: second.secret(NAMESPACE, "berth-cred-tok") == {"token": SECRET + "-new"},
                timeout=20,
            )
            await eventually(lambda: ("Running", "") in pods_of(second, uses_tok), timeout=20)
    await everything.unsubscribe()

    assert len(seen) > 50
    assert not [m.subject for m in seen if SECRET.encode() in m.data]
    assert not any(
        SECRET.encode() in b"".join(f"{k}{v}".encode() for k, v in (m.headers or {}).items())
        for m in seen
    )
