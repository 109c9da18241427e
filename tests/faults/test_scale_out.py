"""Scaled out: two replicas of every service and of the cluster's agent, on a three-node NATS
cluster with every stream on each node (replicas 3). During a run of 2,000 paced training
submissions one NATS node, one replica of each service and the agent that holds the lease are
killed with kill -9. The run ends with every workload recorded once and Completed once, none
lost, none duplicated, none run twice.

Takeover times, printed with the account: after the NATS node (the one leading the most
streams and consumers), until every stream and durable consumer has a leader on a live node
again; after a service replica, until the service answers (another replica does); after the
active agent, until its standby holds the cluster's Lease."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import yaml

from berth.cli.suite import AGENT, SERVICES, Suite, nats_process_name
from berth.contracts.roles import ADMIN
from berth.contracts.subjects import STREAMS
from berth.scheduler_adapter.lease import lease_name
from berth.shared.bus import connect
from tests.faults.harness import Fault, FaultRun, _healthy, drive
from tests.faults.test_faults import at, check, kill_service

pytestmark = [pytest.mark.faults, pytest.mark.timeout(1800)]

COUNT = 2000


class Takeovers:
    """Seconds from each kill until its work is taken over, by fault."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def notes(self) -> list[str]:
        return [f"taken over after {label}: {s:.2f}s" for label, s in self.seconds.items()]


def kill_busiest_nats_node(suite: Suite, takeovers: Takeovers) -> Fault:
    """Kill the node that leads the most streams and consumers: the most to take over."""

    async def inject() -> None:
        led = await _leaders(suite)
        busiest = max(suite.nats_servers, key=lambda s: _led_by(led, s))
        assert busiest.process is not None and busiest.cluster is not None
        name, pid = nats_process_name(busiest), busiest.process.pid
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        while True:
            # Restarted by the supervisor, the node may lead again.
            back = busiest.process is not None and busiest.process.pid != pid
            leaders = await _leaders(suite)
            if None not in leaders.values() and (
                back or busiest.cluster.name not in leaders.values()
            ):
                break
            await asyncio.sleep(0.05)
        label = (
            f"kill -9 {name} (leading {_led_by(led, busiest)} of {len(led)} streams and consumers)"
        )
        takeovers.seconds[label] = time.monotonic() - killed

    return Fault("kill -9 a NATS node", at=0.0, inject=inject, hits=tuple(SERVICES))


def _led_by(leaders: dict[str, str | None], server: Any) -> int:
    return sum(1 for leader in leaders.values() if leader == server.cluster.name)


def kill_replica(suite: Suite, name: str, takeovers: Takeovers) -> Fault:
    fault = kill_service(suite, name)
    inner = fault.inject

    async def inject() -> None:
        await inner()
        killed = time.monotonic()
        nc = await suite.connect(ADMIN, name="berth-faults-health")
        try:
            while not await _healthy(nc, name):
                await asyncio.sleep(0.02)
        finally:
            await nc.close()
        takeovers.seconds[fault.label] = time.monotonic() - killed

    return Fault(fault.label, at=0.0, inject=inject, hits=fault.hits)


def kill_active_agent(suite: Suite, takeovers: Takeovers) -> Fault:
    cluster = suite.agents[AGENT]

    async def inject() -> None:
        holder = (await _lease(suite, cluster))["spec"]["holderIdentity"]
        process = _slot_of(suite, holder)
        assert process is not None, f"no agent process holds the lease as {holder!r}"
        pid = suite.procs[process].pid
        os.kill(pid, signal.SIGKILL)
        killed, killed_at = time.monotonic(), datetime.now(UTC)
        # Taken over once a live agent renewed the lease after the kill: the other replica, or
        # the killed one's slot restarted (it keeps its name, so it takes the lease back).
        while True:
            spec = (await _lease(suite, cluster))["spec"]
            slot = _slot_of(suite, spec.get("holderIdentity") or "")
            renewed = spec.get("renewTime")
            if (
                slot is not None
                and suite.procs[slot].pid != pid
                and renewed
                and datetime.fromisoformat(renewed) > killed_at
            ):
                break
            await asyncio.sleep(0.05)
        takeovers.seconds[f"kill -9 the active agent ({process})"] = time.monotonic() - killed

    return Fault("kill -9 the active agent", at=0.0, inject=inject, hits=(AGENT,))


def _slot_of(suite: Suite, identity: str) -> str | None:
    """The agent process slot holding the lease under ``identity``."""
    return next((n for n in suite.procs if suite.lease_identity(n) == identity), None)


async def _lease(suite: Suite, cluster: str) -> dict[str, Any]:
    config = yaml.safe_load(suite.kubeconfig(cluster).read_text())
    server = config["clusters"][0]["cluster"]["server"]
    token = config["users"][0]["user"]["token"]
    path = f"/apis/coordination.k8s.io/v1/namespaces/berth/leases/{lease_name(cluster)}"
    async with (
        aiohttp.ClientSession() as http,
        http.get(server + path, headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        response.raise_for_status()
        body: dict[str, Any] = await response.json()
        return body


async def _leaders(suite: Suite) -> dict[str, str | None]:
    """The node leading each stream and each durable consumer (None: none now, or unknown)."""
    nc = await connect(
        suite.nats_url,
        name="berth-faults-leaders",
        credentials=suite.credentials(ADMIN),
        role=ADMIN,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.1,
    )
    leaders: dict[str, str | None] = {}
    try:
        js = nc.jetstream()
        for stream in STREAMS:
            try:
                info = await js.stream_info(stream)
                leaders[stream] = info.cluster.leader if info.cluster else None
                for consumer in await js.consumers_info(stream):
                    if consumer.config.durable_name:
                        key = f"{stream} > {consumer.name}"
                        leaders[key] = consumer.cluster.leader if consumer.cluster else None
            except Exception:
                leaders[stream] = None
    finally:
        await nc.close()
    return leaders


def test_scaled_out_suite_loses_and_repeats_nothing_when_a_nats_node_a_replica_of_each_service_and_the_active_agent_die(  # noqa: E501
    scaled_suite: Suite, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = scaled_suite
    assert len(suite.nats_servers) == 3
    takeovers = Takeovers()
    faults = [at(kill_busiest_nats_node(suite, takeovers), 5)]
    services = [name for name in SERVICES if name != AGENT]
    faults += [
        at(kill_replica(suite, name, takeovers), 10 + 3 * i) for i, name in enumerate(services)
    ]
    faults.append(at(kill_active_agent(suite, takeovers), 10 + 3 * len(services)))
    run = FaultRun(suite, label="scale", count=COUNT, timeout=900)
    account = drive(suite, lambda: run.run(faults))
    account.notes += takeovers.notes()
    account.notes.append(
        f"restarted by the supervisor: {dict(sorted(suite.supervisor.restarts.items()))}"
    )
    check(
        account,
        "2 replicas per service, 3 NATS nodes: kill -9 of a NATS node, a replica of each "
        "service and the active agent",
        capsys,
    )
