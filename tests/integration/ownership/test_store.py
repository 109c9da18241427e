"""The ownership store port, on PostgreSQL and in memory: the same answers, so that handler unit
tests on the in-memory store say what the service does on the real one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from berth.ownership.store import Owner, OwnershipStore, Phase, Said, SqlOwnershipStore
from tests.integration.stores import store_runner
from tests.unit.ownership.ownership_fakes import InMemoryOwnershipStore

Scenario = Callable[[OwnershipStore], Awaitable[Any]]
Run = Callable[[Scenario], Awaitable[Any]]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["postgres", "memory"])
async def run(request: pytest.FixtureRequest) -> AsyncIterator[Run]:
    """Runs a scenario against one store implementation, in one transaction."""
    async with store_runner(
        request, "berth.ownership", SqlOwnershipStore, InMemoryOwnershipStore
    ) as run:
        yield run


async def test_a_workload_keeps_its_first_owner(run: Run) -> None:
    async def scenario(store: OwnershipStore) -> Any:
        await store.add_owners([Owner("w-1", "local", "alice@x", {"kind": "training"})])
        await store.add_owners(
            [Owner("w-1", "edge", "bob@x", {}), Owner("w-2", "edge", "bob@x", {})]
        )
        await store.add_owners([])
        return await store.owners(["w-1", "w-2", "w-3"])

    found = await run(scenario)
    assert found == {
        "w-1": Owner("w-1", "local", "alice@x", {"kind": "training"}),
        "w-2": Owner("w-2", "edge", "bob@x", {}),
    }


async def test_reported_and_desired_protection_are_kept_apart_and_never_go_back_in_time(
    run: Run,
) -> None:
    later = T0 + timedelta(seconds=5)

    async def scenario(store: OwnershipStore) -> Any:
        await store.record_reported([Said("local", True, later)])
        await store.record_reported([Said("local", False, T0)])  # late and older
        await store.record_desired([Said("local", False, T0), Said("edge", True, T0)])
        await store.record_desired([Said("edge", False, later)])
        return {c: (p.reported, p.desired) for c, p in (await store.protections()).items()}

    assert await run(scenario) == {"local": (True, False), "edge": (None, False)}


async def test_the_latest_phase_wins_and_a_terminal_phase_is_final(run: Run) -> None:
    async def scenario(store: OwnershipStore) -> Any:
        await store.record_phases([Phase("w-1", "Running", T0), Phase("w-2", "Pending", T0)])
        await store.record_phases([Phase("w-1", "Pending", T0 - timedelta(seconds=1))])
        await store.record_phases([Phase("w-2", "Completed", T0 + timedelta(seconds=1))])
        await store.record_phases([Phase("w-2", "Running", T0 + timedelta(seconds=2))])
        return await store.phases(["w-1", "w-2", "w-3"])

    assert await run(scenario) == {"w-1": "Running", "w-2": "Completed"}


async def test_a_workload_is_found_by_project_and_name_the_latest_one(run: Run) -> None:
    async def scenario(store: OwnershipStore) -> Any:
        await store.add_owners(
            [
                Owner("w-1", "local", "alice@x", {"project": "team-a", "name": "demo"}),
                Owner("w-2", "local", "alice@x", {"project": "team-b", "name": "demo"}),
            ]
        )
        await store.add_owners(
            [Owner("w-3", "local", "bob@x", {"project": "team-a", "name": "demo"})]
        )
        return await store.owners_named([("team-a", "demo"), ("team-a", "other")])

    found = await run(scenario)
    assert list(found) == [("team-a", "demo")]
    assert found[("team-a", "demo")].workload_id == "w-3"
