"""The scheduler-adapter handlers as specifications: a fake unit of work, the in-memory store and
a cluster that records what it is asked; no server.

The same handlers run in the service on PostgreSQL, NATS and a cluster backend
(tests/integration/scheduler_adapter); here each is driven as the batch runner or the cluster
watch would call it.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from berth.contracts.envelope import Actor
from berth.contracts.events import (
    PolicyApprovedData,
    PolicyApprovedV1,
    WorkloadActionAuthorizedData,
    WorkloadActionAuthorizedV1,
    WorkloadPhaseChangedV1,
    WorkloadRef,
    WorkloadScheduledV1,
)
from berth.scheduler_adapter import handlers
from berth.scheduler_adapter.backend import PodStatus, WorkloadSnapshot
from berth.scheduler_adapter.store import HELD, AppliedWorkload
from berth.shared.testing import FakeUnitOfWork, incoming
from tests.unit.scheduler_adapter.adapter_builders import ref, submission
from tests.unit.scheduler_adapter.adapter_fakes import InMemoryAdapterStore, RecordingCluster

pytestmark = pytest.mark.unit

CLUSTER = "cluster-1"
ALICE = Actor(email="alice@example.com")
TRACER = TracerProvider().get_tracer("test")


class Adapter:
    """One agent of ``CLUSTER``: its store, its cluster, and the handlers wired to them."""

    def __init__(self) -> None:
        self.store = InMemoryAdapterStore()
        self.cluster = RecordingCluster()
        self.uow = FakeUnitOfWork(self.store)

    def _store(self, _unit: object) -> InMemoryAdapterStore:
        return self.store

    async def approve(self, *events: PolicyApprovedV1) -> None:
        async with self.uow:
            await handlers.schedule_workloads(
                [incoming(e) for e in events],
                self.uow,
                backend=self.cluster,
                cluster_id=CLUSTER,
                store=self._store,
            )

    async def act(self, action: str, workload: WorkloadRef) -> None:
        event = WorkloadActionAuthorizedV1(
            source="/berth/ownership",
            subject=workload.workloadId,
            actor=ALICE,
            data=WorkloadActionAuthorizedData(
                action=action,  # type: ignore[arg-type]
                name=workload.name,
                project=workload.project,
                workload=workload,
            ),
        )
        async with self.uow:
            await handlers.act_on_actions(
                [incoming(event)],
                self.uow,
                backend=self.cluster,
                cluster_id=CLUSTER,
                store=self._store,
            )

    async def observe(self, *snapshots: WorkloadSnapshot) -> None:
        async with self.uow:
            await handlers.record_snapshots(
                list(snapshots), self.uow, backend=self.cluster, tracer=TRACER, store=self._store
            )

    def phases(self, workload_id: str) -> list[str]:
        return [
            e.data.phase
            for e in self.uow.events_of(WorkloadPhaseChangedV1)
            if e.subject == workload_id
        ]


def workload(name: str, *, cluster: str = CLUSTER, quota: float | None = None) -> WorkloadRef:
    return ref(name).model_copy(update={"clusterId": cluster, "quotaGpus": quota})


def approved(
    target: WorkloadRef, *, gpus: int = 1, over_quota: bool = False, **spec: Any
) -> PolicyApprovedV1:
    body: dict[str, Any] = {
        "image": "registry.example/train:1",
        "compute": {"gpuDevicesRequest": gpus},
        **spec,
    }
    if over_quota:
        body["allowOverQuota"] = True
    return PolicyApprovedV1(
        source="/berth/policy",
        subject=target.workloadId,
        actor=ALICE,
        data=PolicyApprovedData(
            workload=target, effectiveSpec=submission("training", target.name, body)
        ),
    )


def running(target: WorkloadRef, pods: int = 1) -> WorkloadSnapshot:
    return WorkloadSnapshot(
        workload_id=target.workloadId,
        namespace=target.namespace,
        exists=True,
        conditions=(),
        pods=tuple(PodStatus(f"p{i}", "Running", True, True, node="node-1") for i in range(pods)),
        expected_pods=pods,
    )


def completed(target: WorkloadRef) -> WorkloadSnapshot:
    return WorkloadSnapshot(
        workload_id=target.workloadId,
        namespace=target.namespace,
        exists=True,
        conditions=(("Complete", "", ""),),
        pods=(),
        expected_pods=1,
    )


# --- approved workloads ------------------------------------------------------------------------


async def test_an_approved_workload_is_rendered_recorded_and_applied_after_commit() -> None:
    adapter = Adapter()
    train = workload("train")
    event = approved(train)

    await adapter.approve(event)

    (scheduled,) = adapter.uow.events_of(WorkloadScheduledV1)
    assert scheduled.subject == train.workloadId
    assert scheduled.correlationid == event.id  # the approval's chain continues
    assert [o.kind for o in scheduled.data.objects] == ["Job"]
    row = adapter.store.workloads.get(train.workloadId)
    assert row is not None and row.desired == "Running" and row.gpus == 1
    assert row.traceparent  # phase events will join the approval's trace
    # Applied once committed, not before: the watch must find the row when the cluster reports.
    assert adapter.uow.commits == 1
    assert adapter.cluster.applied_ids() == {train.workloadId}


async def test_nothing_is_applied_when_the_batch_does_not_commit() -> None:
    adapter = Adapter()
    with pytest.raises(RuntimeError):
        async with adapter.uow:
            await handlers.schedule_workloads(
                [incoming(approved(workload("train")))],
                adapter.uow,
                backend=adapter.cluster,
                cluster_id=CLUSTER,
                store=adapter._store,
            )
            raise RuntimeError("the transaction failed")
    assert adapter.cluster.applied == []
    assert len(adapter.store.workloads) == 0
    assert adapter.uow.events == []


async def test_another_clusters_workload_is_ignored() -> None:
    adapter = Adapter()

    await adapter.approve(approved(workload("elsewhere", cluster="edge")))

    assert adapter.uow.events == []
    assert len(adapter.store.workloads) == 0
    assert adapter.cluster.applied == []


async def test_a_workload_the_cluster_cannot_run_fails_with_the_reason_and_nothing_is_applied() -> (
    None
):
    adapter = Adapter()
    mpi = ref("mpi", "distributed").model_copy(update={"clusterId": CLUSTER})
    event = PolicyApprovedV1(
        source="/berth/policy",
        subject=mpi.workloadId,
        actor=ALICE,
        data=PolicyApprovedData(
            workload=mpi,
            effectiveSpec=submission(
                "distributed",
                "mpi",
                {
                    "image": "registry.example/mpi:1",
                    "distributedFramework": "MPI",
                    "numWorkers": 2,
                    "command": "python train.py",
                },
                masterSpec={"image": "registry.example/mpi:1", "command": "mpirun"},
                masterSpecSameAsWorker=False,
            ),
        ),
    )

    await adapter.approve(event)

    (failed,) = adapter.uow.events_of(WorkloadPhaseChangedV1)
    assert failed.data.phase == "Failed"
    assert failed.data.reason == "NotRunnable"
    assert "spec.command" in failed.data.message
    assert adapter.uow.events_of(WorkloadScheduledV1) == []
    assert len(adapter.store.workloads) == 0
    assert adapter.cluster.applied == []


async def test_an_approval_seen_twice_keeps_its_first_record() -> None:
    adapter = Adapter()
    train = workload("train")
    await adapter.approve(approved(train, gpus=1))
    await adapter.approve(approved(train, gpus=2))
    row = adapter.store.workloads.get(train.workloadId)
    assert row is not None and row.gpus == 1


# --- quota ---------------------------------------------------------------------------------------


async def test_a_workload_over_its_projects_quota_is_held_pending_with_the_reason() -> None:
    adapter = Adapter()
    first, second = workload("first", quota=2), workload("second", quota=2)

    await adapter.approve(approved(first, gpus=2), approved(second, gpus=1))

    assert adapter.phases(second.workloadId) == ["Pending"]
    (pending,) = adapter.uow.events_of(WorkloadPhaseChangedV1)
    assert pending.data.reason == "OverQuota"
    assert "uses 2 of its deserved 2" in pending.data.message
    row = adapter.store.workloads.get(second.workloadId)
    assert row is not None and row.desired == HELD
    assert adapter.cluster.applied_ids() == {first.workloadId}


async def test_a_workload_that_allows_over_quota_is_never_held() -> None:
    adapter = Adapter()
    await adapter.approve(
        approved(workload("first", quota=1), gpus=1),
        approved(workload("greedy", quota=1), gpus=4, over_quota=True),
    )
    assert adapter.uow.events_of(WorkloadPhaseChangedV1) == []
    assert len(adapter.uow.events_of(WorkloadScheduledV1)) == 2


async def test_a_held_workload_is_admitted_when_its_project_has_room_again() -> None:
    adapter = Adapter()
    first, second = workload("first", quota=2), workload("second", quota=2)
    await adapter.approve(approved(first, gpus=2), approved(second, gpus=2))
    adapter.cluster.applied.clear()

    await adapter.observe(running(first))
    assert adapter.cluster.applied == []  # still no room

    await adapter.observe(completed(first))

    assert adapter.phases(first.workloadId) == ["Running", "Completed"]
    scheduled = [e.subject for e in adapter.uow.events_of(WorkloadScheduledV1)]
    assert scheduled == [first.workloadId, second.workloadId]
    row = adapter.store.workloads.get(second.workloadId)
    assert row is not None and row.desired == "Running"
    assert adapter.cluster.applied_ids() == {second.workloadId}


async def test_a_stopped_workload_gives_its_quota_back() -> None:
    adapter = Adapter()
    first, second = workload("first", quota=1), workload("second", quota=1)
    await adapter.approve(approved(first, gpus=1), approved(second, gpus=1))
    await adapter.observe(running(first))
    await adapter.act("suspend", first)
    adapter.cluster.applied.clear()

    stopped = WorkloadSnapshot(
        workload_id=first.workloadId,
        namespace=first.namespace,
        exists=True,
        conditions=(),
        pods=(),
        expected_pods=1,
        suspended=True,
    )
    await adapter.observe(stopped)

    assert adapter.phases(first.workloadId)[-1] == "Stopped"
    assert adapter.cluster.applied_ids() == {second.workloadId}


async def test_held_workloads_are_admitted_strictly_in_arrival_order() -> None:
    adapter = Adapter()
    first, second = workload("first", quota=2), workload("second", quota=2)
    big, small = workload("big", quota=2), workload("small", quota=2)
    await adapter.approve(
        approved(first, gpus=1),
        approved(second, gpus=1),
        approved(big, gpus=2),
        approved(small, gpus=1),
    )
    assert adapter.phases(big.workloadId) == adapter.phases(small.workloadId) == ["Pending"]

    # One GPU frees: the small one would fit, but it does not overtake the big one.
    await adapter.observe(completed(first))
    assert [e.subject for e in adapter.uow.events_of(WorkloadScheduledV1)][2:] == []

    await adapter.observe(completed(second))
    scheduled = [e.subject for e in adapter.uow.events_of(WorkloadScheduledV1)]
    assert scheduled[2:] == [big.workloadId]
    row = adapter.store.workloads.get(small.workloadId)
    assert row is not None and row.desired == HELD


# --- actions -------------------------------------------------------------------------------------


async def test_an_action_is_carried_out_and_its_phase_emitted_at_once() -> None:
    adapter = Adapter()
    train = workload("train")
    await adapter.approve(approved(train))
    await adapter.observe(running(train))

    await adapter.act("suspend", train)

    assert adapter.cluster.calls == [("suspend", train.workloadId)]
    assert adapter.phases(train.workloadId) == ["Running", "Stopping"]
    stopping = adapter.uow.events_of(WorkloadPhaseChangedV1)[-1]
    assert stopping.actor == ALICE
    row = adapter.store.workloads.get(train.workloadId)
    assert row is not None and row.desired == "Stopped"


async def test_an_action_the_cluster_refuses_leaves_the_workload_as_it_was_and_says_why() -> None:
    adapter = Adapter()
    train = workload("train")
    await adapter.approve(approved(train))
    await adapter.observe(running(train))
    adapter.cluster.refuse["suspend"] = "inference has no suspend"

    await adapter.act("suspend", train)

    refused = adapter.uow.events_of(WorkloadPhaseChangedV1)[-1]
    assert refused.data.phase == "Running"
    assert refused.data.message == "cannot suspend: inference has no suspend"
    row = adapter.store.workloads.get(train.workloadId)
    assert row is not None and row.desired == "Running" and row.phase == "Running"


async def test_a_held_workload_deleted_just_leaves_the_queue() -> None:
    adapter = Adapter()
    first, second = workload("first", quota=1), workload("second", quota=1)
    await adapter.approve(approved(first), approved(second))

    await adapter.act("delete", second)

    assert adapter.cluster.calls == []  # never applied: nothing to ask the cluster
    assert adapter.phases(second.workloadId) == ["Pending", "Deleted"]


async def test_an_action_on_a_workload_not_scheduled_here_does_nothing() -> None:
    adapter = Adapter()
    await adapter.act("delete", workload("unknown"))
    assert adapter.uow.events == []
    assert adapter.cluster.calls == []


# --- phases --------------------------------------------------------------------------------------


async def test_phases_are_emitted_only_on_change_with_pod_counts() -> None:
    adapter = Adapter()
    dist = workload("train")
    await adapter.approve(approved(dist))

    await adapter.observe(running(dist, pods=2), running(dist, pods=2))
    await adapter.observe(running(dist, pods=2))

    (event,) = adapter.uow.events_of(WorkloadPhaseChangedV1)
    assert event.data.phase == "Running"
    assert event.data.previousPhase is None
    assert (event.data.runningPods, event.data.requestedPods) == (2, 2)
    assert event.correlationid == adapter.uow.events_of(WorkloadScheduledV1)[0].correlationid
    row = adapter.store.workloads.get(dist.workloadId)
    assert row is not None and row.phase == "Running"


def creating(target: WorkloadRef) -> WorkloadSnapshot:
    return WorkloadSnapshot(
        workload_id=target.workloadId,
        namespace=target.namespace,
        exists=True,
        conditions=(),
        pods=(),
        expected_pods=1,
    )


async def test_several_transitions_in_one_batch_are_one_event_carrying_the_earlier_ones() -> None:
    adapter = Adapter()
    train, other = workload("train"), workload("other")
    await adapter.approve(approved(train), approved(other))

    await adapter.observe(creating(train), creating(other), running(train))

    (event, only) = adapter.uow.events_of(WorkloadPhaseChangedV1)
    assert (event.subject, event.data.phase, event.data.previousPhase) == (
        train.workloadId,
        "Running",
        "Creating",
    )
    (earlier,) = event.data.history
    assert (earlier.phase, earlier.previousPhase) == ("Creating", None)
    assert earlier.time <= event.time
    assert (event.data.runningPods, event.data.requestedPods) == (1, 1)
    assert [t.phase for t in event.transitions()] == ["Creating", "Running"]
    assert (only.subject, only.data.phase, only.data.history) == (other.workloadId, "Creating", [])
    row = adapter.store.workloads.get(train.workloadId)
    assert row is not None and row.phase == "Running"


async def test_transitions_reported_earlier_are_not_repeated_in_the_next_events_history() -> None:
    adapter = Adapter()
    train = workload("train")
    await adapter.approve(approved(train))

    await adapter.observe(creating(train))
    await adapter.observe(running(train), running(train), completed(train))

    first, second = adapter.uow.events_of(WorkloadPhaseChangedV1)
    assert (first.data.phase, first.data.history) == ("Creating", [])
    assert second.data.phase == "Completed"
    assert [(t.phase, t.previousPhase) for t in second.transitions()] == [
        ("Running", "Creating"),
        ("Completed", "Running"),
    ]


async def test_a_phase_event_joins_the_workloads_trace() -> None:
    adapter = Adapter()
    train = workload("train")
    await adapter.approve(approved(train))
    row = adapter.store.workloads.get(train.workloadId)
    assert row is not None and row.traceparent

    await adapter.observe(running(train))
    await adapter.observe(completed(train))

    events = adapter.uow.events_of(WorkloadPhaseChangedV1)
    assert [e.data.phase for e in events] == ["Running", "Completed"]
    for event in events:
        cause: Any = adapter.uow.cause_of(event)
        trace_id = format(trace.get_current_span(cause).get_span_context().trace_id, "032x")
        assert row.traceparent.split("-")[1] == trace_id


async def test_snapshots_of_workloads_not_ours_are_ignored() -> None:
    adapter = Adapter()
    await adapter.observe(running(workload("stranger")))
    assert adapter.uow.events == []


async def test_a_stale_phase_against_the_last_intent_is_not_reported() -> None:
    adapter = Adapter()
    train = workload("train")
    await adapter.approve(approved(train))
    await adapter.observe(running(train))
    await adapter.act("delete", train)

    await adapter.observe(running(train))  # a watch lagging behind the delete

    assert adapter.phases(train.workloadId) == ["Running", "Deleting"]


# --- restart -------------------------------------------------------------------------------------


async def test_resync_after_a_restart_applies_only_unfinished_workloads() -> None:
    adapter = Adapter()
    done, live, held = workload("done"), workload("live"), workload("held")
    adapter.store.workloads.put(
        done.workloadId,
        AppliedWorkload(
            done.workloadId, done.model_dump(mode="json"), [_obj(done)], phase="Completed"
        ),
    )
    adapter.store.workloads.put(
        live.workloadId,
        AppliedWorkload(
            live.workloadId, live.model_dump(mode="json"), [_obj(live)], phase="Running"
        ),
    )
    adapter.store.workloads.put(
        held.workloadId,
        AppliedWorkload(held.workloadId, held.model_dump(mode="json"), [_obj(held)], desired=HELD),
    )

    resynced = await handlers.resync(
        adapter.uow, await adapter.cluster.listed(), backend=adapter.cluster, store=adapter._store
    )

    # The cluster came back empty (a simulated one restarted with the agent): applied again.
    assert resynced == handlers.Resynced(unfinished=1, applied=1)
    assert adapter.cluster.applied_ids() == {live.workloadId}


def _stored(
    adapter: Adapter, target: WorkloadRef, objects: list[dict[str, Any]], **row: Any
) -> None:
    adapter.store.workloads.put(
        target.workloadId,
        AppliedWorkload(target.workloadId, target.model_dump(mode="json"), objects, **row),
    )


async def test_resync_applies_only_what_the_cluster_does_not_hold() -> None:
    adapter = Adapter()
    running_one, unobserved, never_applied, lost = (
        workload("running"),
        workload("unobserved"),
        workload("never-applied"),
        workload("lost"),
    )
    _stored(adapter, running_one, [_obj(running_one)], phase="Running")
    # Applied, but the agent stopped before the watch recorded any phase of it.
    _stored(adapter, unobserved, [_obj(unobserved)])
    # Recorded, then a crash before the apply that follows the commit.
    _stored(adapter, never_applied, [_obj(never_applied)])
    # Running once, removed from the cluster while the agent was away.
    _stored(adapter, lost, [_obj(lost)], phase="Running")
    adapter.cluster.hold(_obj(running_one), _obj(unobserved))

    resynced = await handlers.resync(
        adapter.uow, await adapter.cluster.listed(), backend=adapter.cluster, store=adapter._store
    )

    assert resynced == handlers.Resynced(unfinished=4, applied=2)
    assert adapter.cluster.applied_ids() == {never_applied.workloadId, lost.workloadId}
    adopted = {o["metadata"]["name"] for o in adapter.cluster.adopted}
    assert adopted == {running_one.name, unobserved.name}
    # No phase is made up here: those of the workloads found come from the cluster's snapshots.
    assert adapter.uow.events == []


async def test_resync_applies_again_what_the_listing_cannot_vouch_for() -> None:
    adapter = Adapter()
    tools, old_rendering, unlisted = workload("tools"), workload("podgroup"), workload("unlisted")
    service = {**_obj(tools), "apiVersion": "v1", "kind": "Service"}
    pod_group = {
        **_obj(old_rendering),
        "apiVersion": "scheduling.run.ai/v2alpha2",
        "kind": "PodGroup",
    }
    _stored(adapter, tools, [_obj(tools), service], phase="Running")
    _stored(adapter, old_rendering, [_obj(old_rendering), pod_group], phase="Running")
    _stored(adapter, unlisted, [_deployment(unlisted)], phase="Running")
    # Every object is there, but the backend lists its top kinds only, and Deployments failed.
    adapter.cluster.hold(
        _obj(tools), service, _obj(old_rendering), pod_group, _deployment(unlisted)
    )
    adapter.cluster.listed_kinds = {("batch/v1", "Job")}

    resynced = await handlers.resync(
        adapter.uow, await adapter.cluster.listed(), backend=adapter.cluster, store=adapter._store
    )

    assert resynced.applied == 3
    assert adapter.cluster.applied_ids() == {
        tools.workloadId,
        old_rendering.workloadId,
        unlisted.workloadId,
    }
    assert adapter.cluster.adopted == []


async def test_a_restart_applies_an_approval_whose_apply_never_ran() -> None:
    first = Adapter()
    applied_one, crashed = workload("applied"), workload("crashed")
    await first.approve(approved(applied_one))
    applied = list(first.cluster.applied)
    # Recorded and committed; the agent dies before the apply that follows the commit.
    first.uow.after_commit.append(_never)
    with pytest.raises(_Crash):
        await first.approve(approved(crashed))
    assert crashed.workloadId in {r.workload_id for r in first.store.workloads}

    second = Adapter()
    second.store = first.store
    second.cluster.hold(*applied)

    resynced = await handlers.resync(
        second.uow, await second.cluster.listed(), backend=second.cluster, store=second._store
    )

    assert resynced == handlers.Resynced(unfinished=2, applied=1)
    assert second.cluster.applied_ids() == {crashed.workloadId}
    assert {o["metadata"]["name"] for o in second.cluster.adopted} == {applied_one.name}


class _Crash(Exception):
    pass


async def _never() -> None:
    raise _Crash


async def test_an_agent_refuses_another_clusters_state() -> None:
    adapter = Adapter()
    await handlers.claim_schema(adapter.uow, CLUSTER, store=adapter._store)
    await handlers.claim_schema(adapter.uow, CLUSTER, store=adapter._store)  # a restart
    with pytest.raises(RuntimeError, match="cluster cluster-1's agent, not edge's"):
        await handlers.claim_schema(adapter.uow, "edge", store=adapter._store)


def _obj(target: WorkloadRef) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": target.name,
            "namespace": target.namespace,
            "labels": {"berth.dev/workload-id": target.workloadId},
        },
    }


def _deployment(target: WorkloadRef) -> dict[str, Any]:
    return {**_obj(target), "apiVersion": "apps/v1", "kind": "Deployment"}
