"""Two replicas of one cluster's agent against the simulated cluster's API server, which serves
Leases as a real one does: the lease itself (create, get, replace with a stale resourceVersion
refused with 409), then the agents: one applies and reports while the other stands by, and the
standby takes over (listing the cluster again and re-applying) once the first stops."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from berth.contracts.subjects import rpc_health
from berth.scheduler_adapter.bootstrap import build
from berth.scheduler_adapter.config import SchedulerAdapterSettings
from berth.scheduler_adapter.lease import KubernetesLeases, lease_name
from berth.scheduler_adapter.simulation.apiserver import SimulatedApiServer
from berth.scheduler_adapter.simulation.inventory import preset
from berth.shared.leadership import LeaderElector, LeaseConflict, LeaseTiming
from berth.shared.service import Service
from tests.identity import publish
from tests.integration.clusters.test_agents import approved, phases, ref
from tests.integration.shared.helpers import eventually

pytestmark = pytest.mark.integration

TIMING = LeaseTiming(duration=2.0, renew_deadline=1.5, retry=0.25)


@pytest.fixture
async def apiserver(tmp_path: Path) -> AsyncIterator[tuple[SimulatedApiServer, Path]]:
    server = SimulatedApiServer(
        preset("edge"), cluster="edge", speed=50.0, state_file=tmp_path / "state.json"
    )
    await server.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(server.kubeconfig())
    try:
        yield server, kubeconfig
    finally:
        await server.stop()


async def lease_of(server: SimulatedApiServer, name: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.token}"}
    path = f"/apis/coordination.k8s.io/v1/namespaces/berth/leases/{name}"
    async with aiohttp.ClientSession() as http, http.get(server.url + path, headers=headers) as r:
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body


async def test_the_simulated_cluster_serves_leases_with_optimistic_concurrency(
    apiserver: tuple[SimulatedApiServer, Path],
) -> None:
    server, kubeconfig = apiserver
    stores = [
        KubernetesLeases(kubeconfig=kubeconfig, context=None, namespace="berth", name="ha-test")
        for _ in range(2)
    ]
    a, b = (LeaderElector(s, f"replica-{i}", TIMING) for i, s in enumerate(stores))
    try:
        assert await stores[0].get() is None
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
        lease = await lease_of(server, "ha-test")
        assert lease["spec"]["holderIdentity"] == "replica-0"
        assert lease["spec"]["leaseDurationSeconds"] == 2
        assert lease["spec"]["renewTime"].endswith("Z")

        # A write from a stale read is refused: the API server answers 409.
        record = await stores[1].get()
        assert record is not None
        assert await a.try_acquire_or_renew()
        with pytest.raises(LeaseConflict):
            await stores[1].update(record)
        with pytest.raises(LeaseConflict):
            await stores[1].create(record)

        # The holder stops renewing (killed): the standby takes over after the duration.
        stopped = time.monotonic()
        await b.acquire()
        took = time.monotonic() - stopped
        assert TIMING.duration - TIMING.retry <= took <= TIMING.duration + 2 * TIMING.retry
        lease = await lease_of(server, "ha-test")
        assert lease["spec"]["holderIdentity"] == "replica-1"
        assert lease["spec"]["leaseTransitions"] == 1
        assert not await a.try_acquire_or_renew()

        # Released on a clean stop: taken at the next try.
        await b.release()
        assert await a.try_acquire_or_renew()
    finally:
        for store in stores:
            await store.close()


async def test_a_replica_started_again_under_its_identity_takes_its_lease_back_at_once(
    apiserver: tuple[SimulatedApiServer, Path],
) -> None:
    server, kubeconfig = apiserver
    stores: list[KubernetesLeases] = []

    def process(identity: str) -> LeaderElector:
        store = KubernetesLeases(
            kubeconfig=kubeconfig, context=None, namespace="berth", name="restart-test"
        )
        stores.append(store)
        return LeaderElector(store, identity, TIMING)

    a, b = process("agent-0"), process("agent-1")
    try:
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
        # a is killed (nothing released) and its supervisor starts it again: the first try
        # takes the lease, well before it would have expired; the other replica stands by.
        again = process("agent-0")
        assert await again.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
        lease = await lease_of(server, "restart-test")
        assert lease["spec"]["holderIdentity"] == "agent-0"
        assert lease["spec"]["leaseTransitions"] == 0
        for _ in range(3):
            await asyncio.sleep(TIMING.retry)
            assert await again.try_acquire_or_renew()
            assert not await b.try_acquire_or_renew()
            assert again.leading and not b.leading

        # Two live processes under one identity: the holder whose lease the other renewed
        # steps down at its next renewal.
        twin = process("agent-0")
        assert await twin.try_acquire_or_renew()
        assert not await again.try_acquire_or_renew()
        assert twin.leading and not again.leading
    finally:
        for store in stores:
            await store.close()


def replica(nats_url: str, database_url: str, kubeconfig: Path, cluster_id: str) -> Service:
    settings = SchedulerAdapterSettings(
        nats_url=nats_url,
        database_url=database_url,
        service_name=f"scheduler-adapter-{cluster_id}",
        cluster_id=cluster_id,
        kubeconfig=kubeconfig,
        local_traces=False,
        batch_size=50,
        fetch_timeout=0.05,
        outbox_poll_seconds=0.2,
        report_interval_seconds=1.0,
        lease_duration_seconds=2,
        lease_renew_deadline_seconds=1.5,
        lease_retry_seconds=0.25,
    )
    assert settings.leader_election
    return build(settings)


async def test_one_agent_replica_works_and_the_other_takes_over_when_it_stops(
    apiserver: tuple[SimulatedApiServer, Path], nats_url: str, database_url: str
) -> None:
    server, kubeconfig = apiserver
    cluster_id = f"ha-{uuid.uuid4().hex[:8]}"
    first = replica(nats_url, database_url, kubeconfig, cluster_id)
    second = replica(nats_url, database_url, kubeconfig, cluster_id)
    await first.app.start()
    stopped: list[Service] = []
    try:
        await eventually(lambda: _true(first.leading), timeout=10)
        await second.app.start()
        # The standby has not taken the lease, consumes nothing and watches nothing.
        await asyncio.sleep(3 * TIMING.retry)
        assert first.leading and not second.leading
        assert second._loops == [] and second._leader_subscribers == []
        # Nor does it answer the health check: the service is the replica that works.
        assert rpc_health(first.name) in [subject for subject, _ in second._leader_replies]
        lease = await lease_of(server, lease_name(cluster_id))
        assert lease["spec"]["holderIdentity"] == first._elector.identity  # type: ignore[union-attr]

        before = ref("before", cluster_id)
        await publish(first.js, approved(before))

        async def running(service: Service, workload_id: str) -> bool:
            return "Running" in await phases(service, workload_id)

        await eventually(lambda: running(first, before.workloadId), timeout=30)

        # A clean stop releases the lease: the standby takes over at its next try, lists the
        # cluster again and carries on.
        stopping = time.monotonic()
        await first.app.stop()
        stopped.append(first)
        await eventually(lambda: _true(second.leading), timeout=5)
        took = time.monotonic() - stopping
        assert took < 2 * TIMING.duration
        after = ref("after", cluster_id)
        await publish(second.js, approved(after))
        await eventually(lambda: running(second, after.workloadId), timeout=30)
        # Applied once each: the workload the first replica applied was not applied again.
        for workload in (before, after):
            assert (await phases(second, workload.workloadId)).count("Creating") == 1
        lease = await lease_of(server, lease_name(cluster_id))
        assert lease["spec"]["holderIdentity"] == second._elector.identity  # type: ignore[union-attr]
    finally:
        for service in (first, second):
            if service not in stopped:
                await service.app.stop()


async def _true(value: bool) -> bool:
    return value
