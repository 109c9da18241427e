"""The scheduler-adapter service (real NATS and PostgreSQL) on the kubernetes backend against the
fake API server: a restart while the cluster keeps going duplicates no object and misses no
phase; suspend, resume and delete act on the cluster."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from kubernetes_asyncio.client import Configuration

from berth.contracts.capabilities import KNATIVE_FEATURES
from berth.contracts.envelope import Actor
from berth.contracts.events import (
    PolicyApprovedData,
    PolicyApprovedV1,
    WorkloadActionAuthorizedData,
    WorkloadActionAuthorizedV1,
    WorkloadPhaseChangedV1,
    WorkloadRef,
)
from berth.scheduler_adapter.bootstrap import build
from berth.scheduler_adapter.config import SchedulerAdapterSettings
from berth.scheduler_adapter.kubernetes import KubernetesCluster
from berth.scheduler_adapter.simulation import Inventory
from berth.scheduler_adapter.simulation.cluster import SimulatedCluster
from berth.shared.service import Service
from tests.identity import publish
from tests.integration.scheduler_adapter.fake_apiserver import FakeApiServer
from tests.integration.shared.helpers import eventually, stored

pytestmark = pytest.mark.integration

NS = "runai-restart"
USER = Actor(email="alice@example.com")


@pytest.fixture
async def server() -> AsyncIterator[FakeApiServer]:
    fake = FakeApiServer(namespaces={"berth", NS})
    await fake.start()
    yield fake
    await fake.stop()


def adapter(server: FakeApiServer, nats_url: str, database_url: str) -> Service:
    settings = SchedulerAdapterSettings(
        nats_url=nats_url,
        database_url=database_url,
        batch_size=50,
        fetch_timeout=0.05,
        outbox_poll_seconds=0.2,
        local_traces=False,
        cluster_backend="kubernetes",
    )
    backend = KubernetesCluster(
        configuration=Configuration(host=server.url), resync_seconds=5, retries=0
    )
    return build(settings, backend=backend)


def ref(name: str) -> WorkloadRef:
    return WorkloadRef(
        workloadId=uuid.uuid4().hex,
        name=name,
        kind="training",
        project="restart",
        clusterId="local",
        namespace=NS,
        queue="restart",
        createdBy=USER.email,
    )


def approved(workload: WorkloadRef, spec: dict[str, Any]) -> PolicyApprovedV1:
    return PolicyApprovedV1(
        source="/berth/policy",
        subject=workload.workloadId,
        actor=USER,
        data=PolicyApprovedData.model_validate(
            {
                "workload": workload.model_dump(),
                "effectiveSpec": {
                    "kind": workload.kind,
                    "name": workload.name,
                    "projectId": workload.project,
                    "spec": spec,
                },
            }
        ),
    )


def action(workload: WorkloadRef, name: str) -> WorkloadActionAuthorizedV1:
    return WorkloadActionAuthorizedV1(
        source="/berth/ownership",
        subject=workload.workloadId,
        actor=USER,
        data=WorkloadActionAuthorizedData(
            action=name,  # type: ignore[arg-type]
            name=workload.name,
            project=workload.project,
            workload=workload,
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


async def test_restart_resyncs_without_duplicates_or_missed_phases(
    server: FakeApiServer, nats_url: str, database_url: str
) -> None:
    workload = ref("restart-train")
    first = adapter(server, nats_url, database_url)
    await first.app.start()
    try:
        await publish(first.js, approved(workload, {"image": "img:1"}))
        job = await eventually(lambda: server.objects.get(("batch/v1", "jobs", NS, workload.name)))
        await eventually(lambda: _has(first, workload.workloadId, "Creating"))
        await server.put_pod(
            NS, "restart-train-x", job, phase="Running", scheduled=True, ready=True
        )
        await eventually(lambda: _has(first, workload.workloadId, "Running"))
    finally:
        await first.app.stop()

    # The cluster goes on while the adapter is down: the job finishes.
    await server.put_pod(NS, "restart-train-x", job, phase="Succeeded", scheduled=True)
    await server.set_status(
        "batch/v1",
        "jobs",
        NS,
        workload.name,
        {"conditions": [{"type": "Complete", "status": "True"}]},
    )
    applies_before = len(server.calls("PATCH", "/jobs/"))
    version = server.get("batch/v1", "jobs", NS, workload.name)["metadata"]["resourceVersion"]

    second = adapter(server, nats_url, database_url)
    await second.app.start()
    try:
        await eventually(lambda: _has(second, workload.workloadId, "Completed"))
        assert await phases(second, workload.workloadId) == ["Creating", "Running", "Completed"]
        # Unfinished as far as the database knew, but the cluster's listing holds its job: not
        # applied again. One job, unchanged, its status kept; its phase read from the listing.
        assert len(server.calls("PATCH", "/jobs/")) == applies_before
        [stored_job] = server.find("batch/v1", "jobs")
        assert stored_job["metadata"]["resourceVersion"] == version
        assert stored_job["status"]["conditions"][0]["type"] == "Complete"
    finally:
        await second.app.stop()


async def test_a_restart_applies_only_the_workloads_missing_from_the_cluster(
    server: FakeApiServer, nats_url: str, database_url: str
) -> None:
    kept, lost = ref("restart-kept"), ref("restart-lost")
    first = adapter(server, nats_url, database_url)
    await first.app.start()
    try:
        for workload in (kept, lost):
            await publish(first.js, approved(workload, {"image": "img:1"}))
        for workload in (kept, lost):
            job = await eventually(
                lambda w=workload: server.objects.get(("batch/v1", "jobs", NS, w.name))
            )
            await server.put_pod(
                NS, f"{workload.name}-x", job, phase="Running", scheduled=True, ready=True
            )
            await eventually(lambda w=workload: _has(first, w.workloadId, "Running"))
    finally:
        await first.app.stop()

    # While the agent is down, one job goes from the cluster (its pod with it).
    await server.remove("v1", "pods", NS, f"{lost.name}-x")
    await server.remove("batch/v1", "jobs", NS, lost.name)
    kept_version = server.get("batch/v1", "jobs", NS, kept.name)["metadata"]["resourceVersion"]
    applies_before = len(server.calls("PATCH", "/jobs/"))

    second = adapter(server, nats_url, database_url)
    await second.app.start()
    try:
        # Applied again at start: the only apply of the restart.
        assert ("batch/v1", "jobs", NS, lost.name) in server.objects
        assert [c.path for c in server.calls("PATCH", "/jobs/")[applies_before:]] == [
            f"/apis/batch/v1/namespaces/{NS}/jobs/{lost.name}"
        ]
        assert server.get("batch/v1", "jobs", NS, kept.name)["metadata"]["resourceVersion"] == (
            kept_version
        )
        await eventually(lambda: _count(second, lost.workloadId, "Creating", 2))
        assert await phases(second, kept.workloadId) == ["Creating", "Running"]
    finally:
        await second.app.stop()


async def test_suspend_resume_and_delete_act_on_the_cluster(
    server: FakeApiServer, nats_url: str, database_url: str
) -> None:
    workload = ref("restart-ws").model_copy(update={"kind": "workspace"})
    service = adapter(server, nats_url, database_url)
    await service.app.start()
    try:
        await publish(service.js, approved(workload, {"image": "img:1"}))
        key = ("apps/v1", "statefulsets", NS, workload.name)
        stateful_set = await eventually(lambda: server.objects.get(key))
        await server.put_pod(
            NS, "restart-ws-0", stateful_set, phase="Running", scheduled=True, ready=True
        )
        await eventually(lambda: _has(service, workload.workloadId, "Running"))

        await publish(service.js, action(workload, "suspend"))
        await eventually(lambda: server.objects[key]["spec"]["replicas"] == 0)
        await server.remove("v1", "pods", NS, "restart-ws-0")
        await eventually(lambda: _has(service, workload.workloadId, "Stopped"))

        await publish(service.js, action(workload, "resume"))
        await eventually(lambda: server.objects[key]["spec"]["replicas"] == 1)
        await server.put_pod(
            NS, "restart-ws-0", server.objects[key], phase="Running", scheduled=True, ready=True
        )
        await eventually(lambda: _count(service, workload.workloadId, "Running", 2))

        await publish(service.js, action(workload, "delete"))
        await eventually(lambda: key not in server.objects)
        await eventually(lambda: _has(service, workload.workloadId, "Deleted"))
        seen = await phases(service, workload.workloadId)
        assert seen[seen.index("Stopping") :] == [
            "Stopping",
            "Stopped",
            "Resuming",
            *seen[seen.index("Resuming") + 1 : seen.index("Deleting")],
            "Deleting",
            "Deleted",
        ]
        assert server.find("v1", "pods") == []
    finally:
        await service.app.stop()


async def _has(service: Service, workload_id: str, phase: str) -> bool:
    return phase in await phases(service, workload_id)


async def _count(service: Service, workload_id: str, phase: str, times: int) -> bool:
    return (await phases(service, workload_id)).count(phase) >= times


async def test_restart_on_the_simulated_cluster_reapplies_only_unfinished_workloads(
    nats_url: str, database_url: str
) -> None:
    """The simulated cluster lives in the adapter's process and restarts with it: the resync
    gives the new cluster every unfinished workload once, and finished ones not at all."""
    settings = SchedulerAdapterSettings(
        nats_url=nats_url,
        database_url=database_url,
        batch_size=50,
        fetch_timeout=0.05,
        outbox_poll_seconds=0.2,
        local_traces=False,
    )
    short = ref("sim-short")
    long = ref("sim-long")
    runtime = [{"name": "berth.dev/sim-runtime-seconds", "value": "60"}]
    first_cluster = SimulatedCluster(Inventory.default(), speed=20.0)
    first = build(settings, backend=first_cluster)
    await first.app.start()
    try:
        await publish(first.js, approved(short, {"image": "img:1"}))
        await publish(first.js, approved(long, {"image": "img:1", "annotations": runtime}))
        await eventually(lambda: _has(first, short.workloadId, "Completed"))
        await eventually(lambda: _has(first, long.workloadId, "Running"))
    finally:
        await first.app.stop()

    second_cluster = SimulatedCluster(Inventory.default(), speed=20.0)
    second = build(settings, backend=second_cluster)
    await second.app.start()
    try:
        assert second_cluster.workload_count == 1  # the unfinished one, once
        await eventually(lambda: _count(second, long.workloadId, "Running", 2))
        assert await phases(second, short.workloadId) == [
            "Creating",
            "Pending",
            "Initializing",
            "Running",
            "Completed",
        ]
        seen = await phases(second, long.workloadId)
        # It started over on the new cluster, and said so.
        first_run = seen.index("Running")
        assert seen[:first_run] == ["Creating", "Pending", "Initializing"]
        assert seen[first_run + 1] in ("Creating", "Pending")
    finally:
        await second.app.stop()


async def test_knative_inference_is_applied_and_a_refused_suspend_is_reported(
    server: FakeApiServer, nats_url: str, database_url: str
) -> None:
    server.install_knative(KNATIVE_FEATURES)
    workload = ref("restart-infer").model_copy(update={"kind": "inference"})
    service = adapter(server, nats_url, database_url)
    await service.app.start()
    try:
        spec = {"image": "img:1", "autoscaling": {"minReplicas": 0, "maxReplicas": 2}}
        await publish(service.js, approved(workload, spec))
        key = ("serving.knative.dev/v1", "services", NS, workload.name)
        knative = await eventually(lambda: server.objects.get(key))
        annotations = knative["spec"]["template"]["metadata"]["annotations"]
        assert annotations["autoscaling.knative.dev/min-scale"] == "0"
        await server.put_pod(
            NS, "restart-infer-1", knative, phase="Running", scheduled=True, ready=True
        )
        await eventually(lambda: _has(service, workload.workloadId, "Running"))

        await publish(service.js, action(workload, "suspend"))

        async def refused() -> bool:
            msgs = await stored(service.js, f"workload.phase-changed.v1.{workload.workloadId}")
            events = [WorkloadPhaseChangedV1.model_validate_json(m.data).data for m in msgs]
            return any(e.message.startswith("cannot suspend") for e in events)

        await eventually(refused)
        assert "Stopping" not in await phases(service, workload.workloadId)
        assert (
            server.objects[key]["metadata"].get("annotations", {}).get("berth.dev/suspended")
            is None
        )
    finally:
        await service.app.stop()


async def test_a_workload_the_cluster_cannot_run_fails_and_nothing_is_applied(
    server: FakeApiServer, nats_url: str, database_url: str
) -> None:
    # The training-operator alone: MPIJob only at kubeflow.org/v1, no mpi-operator.
    server.installed.discard(("kubeflow.org/v2beta1", "mpijobs"))
    server.installed.add(("kubeflow.org/v1", "mpijobs"))
    workload = ref("restart-mpi").model_copy(update={"kind": "distributed"})
    service = adapter(server, nats_url, database_url)
    await service.app.start()
    try:
        spec = {"image": "img:1", "distributedFramework": "MPI", "numWorkers": 2}
        await publish(service.js, approved(workload, spec))
        await eventually(lambda: _has(service, workload.workloadId, "Failed"))
        msgs = await stored(service.js, f"workload.phase-changed.v1.{workload.workloadId}")
        (failed,) = [WorkloadPhaseChangedV1.model_validate_json(m.data).data for m in msgs]
        assert failed.reason == "NotRunnable"
        assert failed.message == (
            "spec.distributedFramework: MPIJob needs the mpi-operator (kubeflow.org/v2beta1), "
            "which cluster local does not run (it serves MPIJob only at kubeflow.org/v1)"
        )
        assert not [call for call in server.calls() if call.method in ("POST", "PATCH")]
    finally:
        await service.app.stop()


async def test_the_start_lists_the_cluster_before_its_resync_transaction_opens(
    server: FakeApiServer, nats_url: str, database_url: str
) -> None:
    settings = SchedulerAdapterSettings(
        nats_url=nats_url, database_url=database_url, local_traces=False
    )
    backend = KubernetesCluster(
        configuration=Configuration(host=server.url), resync_seconds=5, retries=0
    )
    service = build(settings, backend=backend)
    open_units: list[object] = []
    open_while_listing: list[int] = []
    unit_of_work = service.unit_of_work

    @asynccontextmanager
    async def counted() -> AsyncIterator[Any]:
        async with unit_of_work() as unit:
            open_units.append(unit)
            try:
                yield unit
            finally:
                open_units.remove(unit)

    listed = backend.listed

    async def listing() -> Any:
        open_while_listing.append(len(open_units))
        return await listed()

    service.unit_of_work = counted  # type: ignore[method-assign]
    backend.listed = listing  # type: ignore[method-assign]
    await service.app.start()
    try:
        # The first listing of a large cluster takes seconds: no transaction waits for it.
        assert open_while_listing == [0]
    finally:
        await service.app.stop()
