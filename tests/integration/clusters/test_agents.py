"""Clusters as identities on real NATS and PostgreSQL: two agents on one bus, each applying only
its cluster's workloads and settings; cluster-sync registering a cluster with intake and sending
a lost setting down again; ownership enforcing each cluster's own protection."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from berth.cluster_sync.bootstrap import build as build_cluster_sync
from berth.cluster_sync.config import ClusterSyncSettings
from berth.contracts.envelope import Actor
from berth.contracts.events import (
    ClusterConfig,
    ClusterConfigChangedData,
    ClusterConfigChangedV1,
    ClusterConfigDesiredV1,
    ClusterConfigRequestedData,
    ClusterConfigRequestedV1,
    ClusterSettings,
    PolicyApprovedData,
    PolicyApprovedV1,
    WorkloadActionAuthorizedData,
    WorkloadActionAuthorizedV1,
    WorkloadActionData,
    WorkloadActionDeniedV1,
    WorkloadActionRequestedV1,
    WorkloadPhaseChangedV1,
    WorkloadRef,
)
from berth.contracts.queries import (
    ActionTarget,
    ActionTargetsReply,
    ActionTargetsRequest,
    ClusterQuery,
    ClusterReply,
)
from berth.contracts.subjects import RPC_CLUSTERS_GET, RPC_WORKLOADS_ACTION_TARGETS
from berth.intake.bootstrap import build as build_intake
from berth.intake.config import IntakeSettings
from berth.ownership.bootstrap import build as build_ownership
from berth.ownership.config import OwnershipSettings
from berth.ownership.tables import clusters as ownership_clusters
from berth.scheduler_adapter.bootstrap import build as build_adapter
from berth.scheduler_adapter.config import SchedulerAdapterSettings
from berth.scheduler_adapter.simulation import Inventory
from berth.scheduler_adapter.simulation.cluster import SimulatedCluster
from berth.scheduler_adapter.tables import workloads
from berth.shared.service import Service
from tests.conftest import new_database
from tests.identity import ask, publish
from tests.integration.access import grant, rule
from tests.integration.cluster_registry import listed_clusters
from tests.integration.shared.helpers import eventually, stored

pytestmark = pytest.mark.integration

ALICE = Actor(email="alice@example.com")
BOB = Actor(email="bob@example.com")
ADMIN = Actor(email="admin@example.com")
FAST: dict[str, Any] = {"batch_size": 50, "fetch_timeout": 0.05, "outbox_poll_seconds": 0.2}


@contextlib.asynccontextmanager
async def running(service: Service) -> AsyncIterator[Service]:
    await service.app.start()
    try:
        yield service
    finally:
        await service.app.stop()


def agent(
    nats_url: str, database_url: str, cluster_id: str, **settings: Any
) -> tuple[Service, SimulatedCluster]:
    backend = SimulatedCluster(Inventory.default(), speed=20.0)
    service = build_adapter(
        SchedulerAdapterSettings(
            nats_url=nats_url,
            database_url=database_url,
            service_name=f"scheduler-adapter-{cluster_id}",
            cluster_id=cluster_id,
            local_traces=False,
            **FAST,
            **settings,
        ),
        backend=backend,
    )
    return service, backend


def ref(name: str, cluster_id: str) -> WorkloadRef:
    return WorkloadRef(
        workloadId=uuid.uuid4().hex,
        name=name,
        kind="training",
        project="clusters",
        clusterId=cluster_id,
        namespace="runai-clusters",
        queue="clusters",
        createdBy=ALICE.email,
    )


def approved(workload: WorkloadRef) -> PolicyApprovedV1:
    return PolicyApprovedV1(
        source="/berth/policy",
        subject=workload.workloadId,
        actor=ALICE,
        data=PolicyApprovedData.model_validate(
            {
                "workload": workload.model_dump(),
                "effectiveSpec": {
                    "kind": "training",
                    "name": workload.name,
                    "projectId": workload.project,
                    # Runs until deleted: the test decides when it ends.
                    "spec": {"image": "img:1", "annotations": _forever()},
                },
            }
        ),
    )


def _forever() -> list[dict[str, str]]:
    return [{"name": "berth.dev/sim-runtime-seconds", "value": "100000"}]


def desired(cluster_id: str, protection: bool) -> ClusterConfigDesiredV1:
    return ClusterConfigDesiredV1(
        source="/berth/cluster-sync",
        subject=cluster_id,
        actor=ADMIN,
        data=ClusterConfigRequestedData(
            clusterId=cluster_id, settings=ClusterSettings(workloadOwnershipProtection=protection)
        ),
    )


async def phases(service: Service, workload_id: str) -> list[str]:
    msgs = await stored(service.js, f"workload.phase-changed.v1.{workload_id}")
    # Every transition, those an event reports as its history too.
    return [
        t.phase
        for m in msgs
        for t in WorkloadPhaseChangedV1.model_validate_json(m.data).transitions()
    ]


async def applied_ids(database_url: str) -> set[str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return set((await conn.execute(select(workloads.c.workload_id))).scalars())
    finally:
        await engine.dispose()


async def test_each_agent_applies_only_its_clusters_workloads_and_settings(
    nats_url: str, database_url: str, admin_database_url: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    local_id, edge_id = f"local-{suffix}", f"edge-{suffix}"
    async with new_database(admin_database_url) as edge_database_url:
        local, local_cluster = agent(nats_url, database_url, local_id)
        edge, edge_cluster = agent(nats_url, edge_database_url, edge_id)
        async with running(local), running(edge):
            on_local, on_edge = ref("on-local", local_id), ref("on-edge", edge_id)
            await publish(local.js, approved(on_edge))
            await publish(local.js, approved(on_local))

            async def running_phase(service: Service, workload: WorkloadRef) -> bool:
                return "Running" in await phases(service, workload.workloadId)

            await eventually(lambda: running_phase(local, on_local), timeout=30)
            await eventually(lambda: running_phase(edge, on_edge), timeout=30)
            # Each workload is in its own cluster and its own agent's records, and only there.
            assert await applied_ids(database_url) == {on_local.workloadId}
            assert await applied_ids(edge_database_url) == {on_edge.workloadId}
            assert local_cluster.workload_count == 1
            assert edge_cluster.workload_count == 1
            # One Creating per workload: the other agent did not apply it as well.
            assert (await phases(local, on_edge.workloadId)).count("Creating") == 1

            # A setting for edge changes edge's cluster only.
            await publish(edge.js, desired(edge_id, True))

            async def edge_protected() -> bool:
                return bool((await edge_cluster.read_config())["workloadOwnershipProtection"])

            await eventually(edge_protected, timeout=30)
            assert (await local_cluster.read_config())["workloadOwnershipProtection"] is False

            # An authorized delete of the edge workload is carried out by edge's agent.
            await publish(
                edge.js,
                WorkloadActionAuthorizedV1(
                    source="/berth/ownership",
                    subject=on_edge.workloadId,
                    actor=ALICE,
                    data=WorkloadActionAuthorizedData(
                        action="delete",
                        name=on_edge.name,
                        project=on_edge.project,
                        workload=on_edge,
                    ),
                ),
            )

            async def deleted() -> bool:
                return "Deleted" in await phases(edge, on_edge.workloadId)

            await eventually(deleted, timeout=30)
            assert edge_cluster.workload_count == 0
            assert local_cluster.workload_count == 1
            assert "Deleting" not in await phases(local, on_local.workloadId)


async def test_a_second_cluster_agent_refuses_another_clusters_database(
    nats_url: str, database_url: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    first, _ = agent(nats_url, database_url, f"one-{suffix}")
    async with running(first):
        pass
    second, _ = agent(nats_url, database_url, f"two-{suffix}")
    with pytest.raises(RuntimeError, match=f"holds the state of cluster one-{suffix}'s agent"):
        await second.app.start()
    await second.app.stop()


async def test_a_cluster_registers_with_intake_and_a_lost_setting_comes_back(
    nats_url: str, database_url: str, nc: Any
) -> None:
    cluster_id = f"lvl-{uuid.uuid4().hex[:8]}"
    sync = build_cluster_sync(
        ClusterSyncSettings(nats_url=nats_url, database_url=database_url, **FAST)
    )
    intake = build_intake(IntakeSettings(nats_url=nats_url, database_url=database_url, **FAST))
    adapter, cluster = agent(nats_url, database_url, cluster_id, report_interval_seconds=0.5)
    async with running(sync), running(intake):
        await grant(sync)
        assert cluster_id not in await listed_clusters(nc)
        async with running(adapter):
            # The agent's first report registers the cluster; intake learns it from cluster-sync.
            await eventually(lambda: _has(nc, cluster_id), timeout=30)

            await publish(
                nc.jetstream(),
                ClusterConfigRequestedV1(
                    source="/berth/tests",
                    subject=cluster_id,
                    actor=ADMIN,
                    data=ClusterConfigRequestedData(
                        clusterId=cluster_id,
                        settings=ClusterSettings(workloadOwnershipProtection=True),
                    ),
                ),
            )

            async def protected() -> bool:
                return bool((await cluster.read_config())["workloadOwnershipProtection"])

            await eventually(protected, timeout=30)
            # The cluster loses the setting (edited by hand, or an agent that came back without
            # it): the next report disagrees with the desired config, which is sent down again.
            await cluster.set_config({"workloadOwnershipProtection": False})
            await eventually(protected, timeout=30)

            sent = await stored(adapter.js, f"cluster.config-desired.v1.{cluster_id}")
            assert len(sent) >= 2  # the request, then at least one re-send after the drift

            async def recorded() -> list[bool]:
                return [
                    ClusterConfigChangedV1.model_validate_json(
                        m.data
                    ).data.config.workloadOwnershipProtection
                    for m in await stored(adapter.js, f"cluster.config-changed.v1.{cluster_id}")
                ]

            # cluster-sync saw it registered (off), switched on, lost, and back on.
            await eventually(lambda: _endswith(recorded(), [False, True, False, True]), timeout=30)

            # `berth cluster config get` reads both back from cluster-sync: reported and desired.
            reply = await ask(
                nc, RPC_CLUSTERS_GET, ClusterQuery(clusterId=cluster_id), ClusterReply, timeout=10
            )
            (info,) = reply.clusters
            assert info.clusterId == cluster_id
            assert info.desired == {"workloadOwnershipProtection": True}
            assert info.config["workloadOwnershipProtection"] is True
            assert info.capabilities


async def _endswith(values: Any, tail: list[bool]) -> bool:
    return bool((await values)[-len(tail) :] == tail)


async def _has(nc: Any, cluster_id: str) -> bool:
    return cluster_id in await listed_clusters(nc)


async def test_ownership_enforces_each_clusters_own_protection(
    nats_url: str, database_url: str, nc: Any
) -> None:
    suffix = uuid.uuid4().hex[:8]
    guarded, open_, asked = f"guarded-{suffix}", f"open-{suffix}", f"asked-{suffix}"
    ownership = build_ownership(
        OwnershipSettings(nats_url=nats_url, database_url=database_url, **FAST)
    )
    js = nc.jetstream()
    async with running(ownership):
        # Both may act on trainings anywhere: what differs is each cluster's protection.
        await grant(ownership, rule(ALICE.email, "L1 researcher"), rule(BOB.email, "L1 researcher"))
        refs = {c: ref(f"w-{c}", c) for c in (guarded, open_, asked)}
        # Intake's part: who created each workload and where it lives, as ownership asks it.
        by_id = {w.workloadId: ActionTarget(workload=w) for w in refs.values()}

        async def intake_answers(msg: Any) -> None:
            asked_for = ActionTargetsRequest.model_validate_json(msg.data)
            reply = ActionTargetsReply(
                byId={i: by_id[i] for i in asked_for.workloadIds if i in by_id}
            )
            await msg.respond(reply.model_dump_json().encode())

        await nc.subscribe(RPC_WORKLOADS_ACTION_TARGETS, cb=intake_answers)
        # Reported: protection on in one cluster, off in another; the third's agent reports it
        # off while administrators asked for it (an agent that restarted without it).
        for cluster_id, on in ((guarded, True), (open_, False), (asked, False)):
            await publish(
                js,
                ClusterConfigChangedV1(
                    source="/berth/cluster-sync",
                    subject=cluster_id,
                    actor=ADMIN,
                    data=ClusterConfigChangedData(
                        clusterId=cluster_id,
                        config=ClusterConfig(workloadOwnershipProtection=on),
                        changed=["workloadOwnershipProtection"],
                    ),
                ),
            )
        await publish(js, desired(asked, True))
        told = {guarded: (True, None), open_: (False, None), asked: (False, True)}

        async def recorded() -> bool:
            known = await _known_protection(database_url)
            return all(known.get(c) == state for c, state in told.items())

        await eventually(recorded, timeout=30)

        outcomes: dict[str, str] = {}
        for cluster_id, workload in refs.items():
            outcomes[cluster_id] = await _decision(nc, workload)
        assert outcomes[open_] == "authorized"
        assert outcomes[guarded].startswith(
            f"denied: workload ownership protection is on in cluster {guarded}"
        )
        assert outcomes[asked].startswith(
            f"denied: workload ownership protection is on in cluster {asked}"
        )


async def _known_protection(database_url: str) -> dict[str, tuple[bool | None, bool | None]]:
    """What ownership recorded per cluster: (reported, desired) protection."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(ownership_clusters))).all()
    finally:
        await engine.dispose()
    return {r.cluster_id: (r.protection, r.desired_protection) for r in rows}


async def _decision(nc: Any, workload: WorkloadRef) -> str:
    """Ask, as bob, to delete ``workload`` until ownership knows it and everything it was told,
    and say what it decided."""
    js = nc.jetstream()

    async def outcome() -> str | None:
        await publish(
            js,
            WorkloadActionRequestedV1(
                source="/berth/tests",
                subject=workload.workloadId,
                actor=BOB,
                data=WorkloadActionData(action="delete", name=workload.name, project="clusters"),
            ),
        )
        denied = await stored(js, f"workload.action-denied.v1.{workload.workloadId}")
        authorized = await stored(js, f"workload.action-authorized.v1.{workload.workloadId}")
        if authorized:
            return "authorized"
        reasons = [WorkloadActionDeniedV1.model_validate_json(m.data).data.reason for m in denied]
        # "unknown workload" while the owner record has not arrived yet: ask again.
        real = [r for r in reasons if not r.startswith("unknown workload")]
        return f"denied: {real[-1]}" if real else None

    return str(await eventually(outcome, timeout=30, interval=0.5))
