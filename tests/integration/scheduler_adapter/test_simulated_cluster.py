"""The simulated cluster's API server, driven by the production kubernetes backend through
kubernetes-asyncio and a kubeconfig, as the agent reaches it: phases from the simulation,
re-applies that change nothing, watches that expire, logs, deletion, and a restart from its
state file."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from berth.scheduler_adapter.backend import WorkloadSnapshot
from berth.scheduler_adapter.kubernetes import KubernetesCluster
from berth.scheduler_adapter.phases import derive_phase
from berth.scheduler_adapter.simulation.apiserver import SimulatedApiServer
from berth.scheduler_adapter.simulation.inventory import preset
from tests.integration.scheduler_adapter.test_kubernetes_backend import NS, workload

pytestmark = pytest.mark.integration

SPEED = 50.0
RUNTIME = [{"name": "berth.dev/sim-runtime-seconds", "value": "20"}]


class Running:
    """A simulated cluster and an agent's backend against it."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.server: SimulatedApiServer | None = None
        self.backend: KubernetesCluster | None = None
        self.phases: dict[str, list[str]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.server = SimulatedApiServer(
            preset("edge"), cluster="edge", speed=SPEED, state_file=self.state / "state.json"
        )
        await self.server.start()
        kubeconfig = self.state / "kubeconfig"
        kubeconfig.write_text(self.server.kubeconfig())
        self.backend = KubernetesCluster(kubeconfig=kubeconfig, resync_seconds=5)
        feed = self.backend.snapshots()
        await self.backend.start()
        await asyncio.wait_for(self.backend.wait_synced(), 10)
        self._task = asyncio.create_task(self._read(feed))

    async def _read(self, feed: AsyncIterator[list[WorkloadSnapshot]]) -> None:
        async for batch in feed:
            for snapshot in batch:
                phase = derive_phase(snapshot)[0]
                seen = self.phases.setdefault(snapshot.workload_id, [])
                if not seen or seen[-1] != phase:
                    seen.append(phase)

    async def until(self, workload_id: str, phase: str, timeout: float = 10) -> list[str]:
        deadline = time.monotonic() + timeout
        while phase not in self.phases.get(workload_id, []):
            if time.monotonic() > deadline:
                raise AssertionError(f"{workload_id} never {phase}: {self.phases}")
            await asyncio.sleep(0.02)
        return self.phases[workload_id]

    async def pod_condition(
        self, workload_id: str, kind: str, timeout: float = 10
    ) -> dict[str, str]:
        assert self.backend is not None
        deadline = time.monotonic() + timeout
        while True:
            for pod in self.backend.workload_pods(workload_id):
                for condition in (pod.get("status") or {}).get("conditions") or []:
                    if condition["type"] == kind:
                        return dict(condition)
            if time.monotonic() > deadline:
                raise AssertionError(f"{workload_id} has no pod with a {kind} condition")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.backend is not None:
            await self.backend.close()
        if self.server is not None:
            await self.server.stop()

    async def get(self, path: str) -> tuple[int, str]:
        assert self.server is not None
        headers = {"Authorization": f"Bearer {self.server.token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.server.url + path, headers=headers) as response,
        ):
            return response.status, await response.text()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Running]:
    running = Running(tmp_path)
    await running.start()
    yield running
    await running.stop()


async def test_a_training_runs_through_every_phase_and_a_reapply_changes_nothing(
    cluster: Running,
) -> None:
    assert cluster.backend is not None and cluster.server is not None
    objects = workload("t1", "training", {"image": "img:1", "annotations": RUNTIME})
    await cluster.backend.apply(objects)
    await cluster.until("wl-t1", "Running")
    requests = cluster.server.requests
    await cluster.backend.apply(objects)  # what a restarted agent's resync does
    assert cluster.server.requests == requests + 1
    seen = await cluster.until("wl-t1", "Completed")
    assert seen == ["Creating", "Pending", "Initializing", "Running", "Completed"]
    config = await cluster.backend.read_config()
    assert (config["nodePools"], config["gpus"]) == (["default"], 8)
    assert config["capabilities"]["workloadApis"]["MPIJob"] == "kubeflow.org/v2beta1"


async def test_a_changed_template_gives_the_pods_its_containers(cluster: Running) -> None:
    assert cluster.backend is not None
    await cluster.backend.apply(workload("t3", "training", {"image": "img:1"}))
    await cluster.until("wl-t3", "Running")
    await cluster.backend.apply(workload("t3", "training", {"image": "img:2"}))
    deadline = time.monotonic() + 10
    while True:
        pods = cluster.backend.workload_pods("wl-t3")
        images = {c["image"] for pod in pods for c in pod["spec"]["containers"]}
        if pods and images == {"img:2"}:
            break
        assert time.monotonic() < deadline, f"the pods still run {images}"
        await asyncio.sleep(0.02)


async def test_the_pending_reason_is_the_pods_scheduling_condition(cluster: Running) -> None:
    assert cluster.backend is not None
    too_big = {"image": "img:1", "compute": {"gpuDevicesRequest": 5}}
    await cluster.backend.apply(workload("big", "training", too_big))
    await cluster.until("wl-big", "Pending")
    # As on a real cluster, the pod is Pending from its creation and the scheduler's verdict
    # arrives with a later status update.
    scheduled = await cluster.pod_condition("wl-big", "PodScheduled")
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    assert "5 free GPUs" in scheduled["message"]


async def test_a_crash_is_in_the_log_and_a_foreground_delete_removes_everything(
    cluster: Running,
) -> None:
    assert cluster.backend is not None
    crash = [*RUNTIME, {"name": "berth.dev/sim-fail", "value": "crash"}]
    spec = {"image": "img:1", "annotations": crash, "backoffLimit": 0}
    await cluster.backend.apply(workload("bad", "training", spec))
    await cluster.until("wl-bad", "Failed", timeout=15)
    (pod,) = cluster.backend.workload_pods("wl-bad")
    text = await cluster.backend.pod_log(NS, pod["metadata"]["name"])
    assert "starting img:1" in text and "RuntimeError: simulated crash" in text
    await cluster.backend.delete(NS, "wl-bad")
    await cluster.until("wl-bad", "Deleted")
    status, _ = await cluster.get(f"/apis/batch/v1/namespaces/{NS}/jobs/bad")
    assert status == 404
    assert cluster.backend.workload_pods("wl-bad") == []


async def test_a_watch_from_a_version_older_than_the_log_is_told_it_expired(
    cluster: Running,
) -> None:
    assert cluster.server is not None
    cluster.server._compacted = 10_000_000  # as if the event log had moved on
    status, body = await cluster.get("/api/v1/pods?watch=true&resourceVersion=5&timeoutSeconds=1")
    event = json.loads(body.splitlines()[0])
    assert (status, event["type"], event["object"]["code"]) == (200, "ERROR", 410)


async def test_a_restarted_cluster_keeps_finished_workloads_and_its_config(
    tmp_path: Path,
) -> None:
    first = Running(tmp_path)
    await first.start()
    assert first.backend is not None
    await first.backend.apply(workload("done", "training", {"image": "i", "annotations": RUNTIME}))
    await first.until("wl-done", "Completed")
    await first.backend.set_config({"workloadOwnershipProtection": True})
    await asyncio.sleep(0.8)  # the state file catches up within half a second
    await first.stop()

    second = Running(tmp_path)
    await second.start()
    try:
        assert second.backend is not None
        assert await second.until("wl-done", "Completed") == ["Completed"]
        assert (await second.backend.read_config())["workloadOwnershipProtection"] is True
    finally:
        await second.stop()
