"""The cluster-sync store port, on PostgreSQL and in memory: the same answers, so that handler
unit tests on the in-memory registry say what the service does on the real one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from berth.cluster_sync.store import ClusterSyncStore, DesiredChange, SqlClusterSyncStore
from berth.contracts.events import ClusterConfig, ClusterRecord
from tests.integration.stores import store_runner
from tests.unit.cluster_sync.cluster_sync_fakes import InMemoryClusterSyncStore

Scenario = Callable[[ClusterSyncStore], Awaitable[Any]]
Run = Callable[[Scenario], Awaitable[Any]]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["postgres", "memory"])
async def run(request: pytest.FixtureRequest) -> AsyncIterator[Run]:
    """Runs a scenario against one store implementation, in one transaction."""
    async with store_runner(
        request, "berth.cluster_sync", SqlClusterSyncStore, InMemoryClusterSyncStore
    ) as run:
        yield run


def record(cluster: str, at: datetime, **config: Any) -> ClusterRecord:
    return ClusterRecord(
        clusterId=cluster,
        backend="simulated",
        config=ClusterConfig(**config),
        nodePools=["a100"],
        gpus=8,
        capabilities={"knative": {"installed": False}},
        extra={"region": "eu"},
        reportedAt=at,
    )


async def test_saved_records_read_back_whole_and_announced(run: Run) -> None:
    first, second = record("local", T0), record("local", T0 + timedelta(seconds=1), knative=True)

    async def scenario(store: ClusterSyncStore) -> Any:
        before = await store.clusters(["local"])
        await store.save_clusters([first, record("edge", T0)])
        await store.save_clusters([second])
        await store.save_clusters([])
        return before, await store.clusters(["local", "edge", "gone"])

    before, after = await run(scenario)
    assert before == {}
    assert sorted(after) == ["edge", "local"]
    assert after["local"].record == second and after["local"].announced


async def test_desired_settings_merge_in_order(run: Run) -> None:
    async def scenario(store: ClusterSyncStore) -> Any:
        await store.merge_desired(
            [
                DesiredChange("local", {"workloadOwnershipProtection": True, "a": 1}, T0),
                DesiredChange("local", {"workloadOwnershipProtection": False}, T0),
                DesiredChange("edge", {}, T0),
            ]
        )
        await store.merge_desired([])
        return await store.desired(["local", "edge", "other"])

    assert await run(scenario) == {
        "local": {"workloadOwnershipProtection": False, "a": 1},
        "edge": {},
    }


async def test_silent_clusters_are_marked_disconnected_once_and_a_report_reconnects(
    run: Run,
) -> None:
    async def scenario(store: ClusterSyncStore) -> Any:
        await store.save_clusters([record("local", T0 + timedelta(seconds=30)), record("edge", T0)])
        marked = await store.disconnect(T0 + timedelta(seconds=10))
        again = await store.disconnect(T0 + timedelta(seconds=10))
        after = await store.clusters(["local", "edge"])
        await store.save_clusters([record("edge", T0 + timedelta(seconds=40))])
        back = await store.clusters(["edge"])
        return marked, again, after, back

    marked, again, after, back = await run(scenario)
    assert [(r.clusterId, r.connected, r.reportedAt) for r in marked] == [("edge", False, T0)]
    assert again == []
    assert (after["local"].record.connected, after["edge"].record.connected) == (True, False)
    assert back["edge"].record.connected
