"""The agent's answers about a workload's pods and logs, over a fake reader of the cluster."""

from __future__ import annotations

from typing import Any

import pytest

from berth.contracts.queries import LogsQuery, NodesQuery, PodsQuery
from berth.scheduler_adapter import pods
from berth.shared.errors import PermanentError

pytestmark = pytest.mark.unit


def pod(name: str, *, phase: str = "Running", node: str | None = "a-node-0", **extra: Any) -> Any:
    scheduled = {"type": "PodScheduled", "status": "True" if node else "False"}
    if not node:
        scheduled.update(reason="Unschedulable", message="no node in pools a has 2 free GPUs")
    return {
        "metadata": {"name": name, "namespace": "ns", "annotations": extra.get("annotations", {})},
        "spec": {
            **({"nodeName": node} if node else {}),
            "containers": [{"name": "main", "resources": extra.get("resources", {})}],
        },
        "status": {
            "phase": phase,
            "conditions": [scheduled, {"type": "Ready", "status": "True"}],
            "containerStatuses": [{"restartCount": extra.get("restarts", 0), "state": {}}],
        },
    }


class Reader:
    def __init__(self, found: list[Any], logs: dict[str, str] | None = None) -> None:
        self.found = found
        self.logs = logs or {}

    def workload_pods(self, workload_id: str) -> list[Any]:
        return self.found if workload_id == "w1" else []

    async def node_pools(self) -> dict[str, str]:
        return {"a-node-0": "a100"}

    def active_pods(self) -> list[Any]:
        return [p for p in self.found if p["status"]["phase"] in ("Pending", "Running")]

    async def nodes(self) -> list[Any]:
        return [
            {
                "metadata": {"name": name, "labels": {"kai.scheduler/node-pool": "a100"}},
                "status": {
                    "allocatable": {"nvidia.com/gpu": "8"},
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
            for name in ("a-node-0", "a-node-1")
        ]

    async def pod_log(self, namespace: str, name: str, container: str | None = None) -> str:
        if name not in self.logs:
            raise PermanentError(f'container in pod "{name}" is waiting to start')
        return self.logs[name]


async def test_pods_show_node_pool_gpus_and_the_pending_reason() -> None:
    reader = Reader(
        [
            pod("w-1", node=None, phase="Pending", annotations={"gpu-fraction": "0.5"}),
            pod("w-0", resources={"limits": {"nvidia.com/gpu": "2"}}, restarts=1),
        ]
    )
    reply = await pods.pods_query(PodsQuery(workloadId="w1"), reader=reader)
    first, second = reply.pods
    assert (first.name, first.node, first.nodePool, first.gpus, first.restarts) == (
        "w-0",
        "a-node-0",
        "a100",
        "2",
        1,
    )
    assert (second.phase, second.gpus, second.reason) == ("Pending", "0.5", "Unschedulable")
    assert "2 free GPUs" in second.message


async def test_logs_come_in_chunks_from_an_offset_and_tail_only_at_first() -> None:
    reader = Reader([pod("w-0")], {"w-0": "a\nb\nc\n"})
    first = await pods.logs_query(LogsQuery(workloadId="w1", tail=2), reader=reader)
    assert (first.pod, first.lines, first.offset, first.finished) == ("w-0", ["b", "c"], 3, False)
    reader.logs["w-0"] += "d\n"
    again = await pods.logs_query(LogsQuery(workloadId="w1", offset=3, tail=2), reader=reader)
    assert (again.lines, again.offset) == (["d"], 4)


async def test_logs_of_a_finished_pod_say_no_more_will_come() -> None:
    reader = Reader([pod("w-0", phase="Failed")], {"w-0": "RuntimeError: boom\n"})
    reply = await pods.logs_query(LogsQuery(workloadId="w1"), reader=reader)
    assert reply.finished and reply.lines == ["RuntimeError: boom"]


async def test_an_unknown_pod_or_one_not_started_is_named() -> None:
    reader = Reader([pod("w-0", node=None, phase="Pending")])
    unknown = await pods.logs_query(LogsQuery(workloadId="w1", pod="w-9"), reader=reader)
    assert unknown.error == 'no pod "w-9" (pods: w-0)'
    waiting = await pods.logs_query(LogsQuery(workloadId="w1"), reader=reader)
    assert waiting.error is not None and "waiting to start" in waiting.error
    none = await pods.logs_query(LogsQuery(workloadId="w2"), reader=reader)
    assert none.finished and none.error == "the workload has no pods on its cluster"


async def test_nodes_count_the_gpus_held_by_running_pods_fractions_in_part() -> None:
    reader = Reader(
        [
            pod("w-0", resources={"limits": {"nvidia.com/gpu": "2"}}),
            pod("w-1", annotations={"gpu-fraction": "0.5", "gpu-fraction-num-devices": "2"}),
            pod("w-2", phase="Succeeded", resources={"limits": {"nvidia.com/gpu": "4"}}),
        ]
    )
    reply = await pods.nodes_query(NodesQuery(), reader=reader)
    assert [(n.name, n.nodePool, n.gpus, n.gpusUsed) for n in reply.nodes] == [
        ("a-node-0", "a100", 8, 3.0),
        ("a-node-1", "a100", 8, 0.0),
    ]
