"""Scaled out: two replicas of every service and of the cluster's agent, on a three-node NATS
cluster with every stream on each node (replicas 3). During a run of 2,000 paced training
submissions one NATS node, one replica of each service and the agent that holds the lease are
killed with kill -9. The run ends with every workload recorded once and Completed once, none
lost, none duplicated, none run twice.

Takeover times, printed with the account: after the NATS node, until every stream has a leader
on a live node again; after a service replica, until the service answers (another replica
does); after the active agent, until its standby holds the cluster's Lease."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
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


def kill_nats_node(suite: Suite, index: int, takeovers: Takeovers) -> Fault:
    server = suite.nats_servers[index]
    name = nats_process_name(server)

    async def inject() -> None:
        assert server.process is not None and server.cluster is not None
        pid = server.process.pid
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()

        def back() -> bool:
            # Restarted by the supervisor: it may lead streams again.
            return server.process is not None and server.process.pid != pid

        await _until_streams_led(suite, server.cluster.name, back)
        takeovers.seconds[f"kill -9 {name}"] = time.monotonic() - killed

    return Fault(f"kill -9 {name}", at=0.0, inject=inject, hits=tuple(SERVICES))


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
        pid = int(holder.rsplit("-", 2)[-2])
        process = next(n for n, p in suite.procs.items() if p.pid == pid)
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        while True:
            lease = await _lease(suite, cluster)
            if lease["spec"].get("holderIdentity") not in ("", holder):
                break
            await asyncio.sleep(0.05)
        takeovers.seconds[f"kill -9 the active agent ({process})"] = time.monotonic() - killed

    return Fault("kill -9 the active agent", at=0.0, inject=inject, hits=(AGENT,))


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


async def _until_streams_led(suite: Suite, node: str, back: Callable[[], bool]) -> None:
    """Until every stream has a leader, none of them the killed ``node`` unless it is back."""
    nc = await connect(
        suite.nats_url,
        name="berth-faults-streams",
        credentials=suite.credentials(ADMIN),
        role=ADMIN,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.1,
    )
    try:
        js = nc.jetstream()
        pending = set(STREAMS)
        while pending:
            for stream in sorted(pending):
                try:
                    info = await js.stream_info(stream)
                except Exception:
                    continue
                leader = info.cluster.leader if info.cluster else None
                if leader and (leader != node or back()):
                    pending.discard(stream)
            if pending:
                await asyncio.sleep(0.05)
    finally:
        await nc.close()


def test_scaled_out_suite_loses_and_repeats_nothing_when_a_nats_node_a_replica_of_each_service_and_the_active_agent_die(  # noqa: E501
    scaled_suite: Suite, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = scaled_suite
    assert len(suite.nats_servers) == 3
    takeovers = Takeovers()
    faults = [at(kill_nats_node(suite, 0, takeovers), 5)]
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
