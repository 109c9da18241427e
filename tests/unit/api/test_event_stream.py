"""The live stream: a snapshot first, then only the events of workloads the caller may read."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from berth.api.auth import caller_of
from berth.api.workloads import event_stream
from berth.contracts.envelope import Actor
from berth.contracts.events import WorkloadPhaseChangedData, WorkloadPhaseChangedV1, WorkloadRef
from berth.contracts.queries import WorkloadListReply, WorkloadQuery, WorkloadReply, WorkloadView
from berth.contracts.subjects import RPC_WORKLOADS_GET, RPC_WORKLOADS_LIST
from tests.unit.api.fakes import FakeBus, token

pytestmark = pytest.mark.unit


def view(workload_id: str, project: str, phase: str) -> WorkloadView:
    return WorkloadView(
        workloadId=workload_id,
        name=workload_id,
        kind="training",
        project=project,
        createdBy="alice@example.com",
        status=phase,
        phase=phase,
        submittedAt=datetime(2026, 1, 1, tzinfo=UTC),
        clusterId="local",
    )


def changed(workload_id: str, project: str, phase: str) -> WorkloadPhaseChangedV1:
    ref = WorkloadRef(
        workloadId=workload_id,
        name=workload_id,
        kind="training",
        project=project,
        clusterId="local",
        namespace=f"berth-{project}",
        queue=project,
        createdBy="bob@example.com",
    )
    return WorkloadPhaseChangedV1(
        source="/berth/scheduler-adapter",
        subject=workload_id,
        actor=Actor.system("test"),
        data=WorkloadPhaseChangedData(workload=ref, phase=phase),  # type: ignore[arg-type]
    )


class Connected:
    async def is_disconnected(self) -> bool:
        return False


def frame(chunk: Any) -> tuple[str, dict[str, Any]]:
    text = chunk.decode() if isinstance(chunk, bytes) else chunk
    kind = data = ""
    for line in text.strip().splitlines():
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
    return kind, json.loads(data)


def alices_bus() -> FakeBus:
    """Intake's answers for alice: she reads w-1 in team-a only."""
    bus = FakeBus()
    readable = {"w-1": view("w-1", "team-a", "Pending")}
    bus.replies[RPC_WORKLOADS_LIST] = lambda _q: WorkloadListReply(
        workloads=list(readable.values())
    )

    def get(query: WorkloadQuery) -> WorkloadReply:
        found = readable.get(query.workloadId or "")
        return WorkloadReply(workload=found, error=None if found else "not found")

    bus.replies[RPC_WORKLOADS_GET] = get
    return bus


async def test_a_stream_starts_with_the_phases_now_then_skips_what_the_caller_may_not_read() -> (
    None
):
    bus = alices_bus()
    caller = caller_of(f"Bearer {token('alice@example.com')}")
    response = event_stream(bus, Connected(), caller, "*", "team-a")  # type: ignore[arg-type]
    frames = response.body_iterator.__aiter__()

    kind, snapshot = frame(await frames.__anext__())
    assert kind == "snapshot"
    assert snapshot == {"workloads": [{"subject": "w-1", "phase": "Pending", "message": ""}]}

    bus.queues[0].put_nowait(changed("w-9", "team-b", "Running"))  # bob's, in another project
    bus.queues[0].put_nowait(changed("w-1", "team-a", "Running"))
    kind, event = frame(await asyncio.wait_for(frames.__anext__(), 5))
    assert (kind, event["subject"], event["data"]["phase"]) == (
        "workload.phase-changed",
        "w-1",
        "Running",
    )
    # Every read was intake's, on alice's token: it decides what she may see.
    assert {auth for _s, _q, auth in bus.asked} == {caller.authorization}
    assert [getattr(q, "workloadId", None) for s, q, _a in bus.asked if s == RPC_WORKLOADS_GET] == [
        "w-9"
    ]
    await frames.aclose()  # type: ignore[attr-defined]


async def test_one_workloads_stream_snapshots_that_workload() -> None:
    bus = alices_bus()
    caller = caller_of(f"Bearer {token('alice@example.com')}")
    response = event_stream(bus, Connected(), caller, "w-1", None)  # type: ignore[arg-type]
    frames = response.body_iterator.__aiter__()
    kind, snapshot = frame(await frames.__anext__())
    assert (kind, [w["subject"] for w in snapshot["workloads"]]) == ("snapshot", ["w-1"])
    bus.queues[0].put_nowait(changed("w-1", "team-a", "Completed"))
    kind, event = frame(await asyncio.wait_for(frames.__anext__(), 5))
    assert event["data"]["phase"] == "Completed"
    await frames.aclose()  # type: ignore[attr-defined]
