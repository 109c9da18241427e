"""The ownership store port, on PostgreSQL and in memory: the same answers, so that handler unit
tests on the in-memory store say what the service does on the real one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from berth.ownership.store import OwnershipStore, Said, SqlOwnershipStore
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
