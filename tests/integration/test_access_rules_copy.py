"""A service's copy of the access rules on PostgreSQL answers as the in-memory one the handler
tests use: deletions win over late creations, a grant made again comes back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from berth.intake.tables import access_rules
from berth.shared.access import AccessRules, InMemoryAccessRules, SqlAccessRules
from tests.integration.stores import Run, store_runner
from tests.unit.access_builders import rule

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["postgres", "memory"])
async def run(request: pytest.FixtureRequest) -> AsyncIterator[Run]:
    async with store_runner(
        request,
        "berth.intake",
        lambda conn: SqlAccessRules(conn, access_rules),
        InMemoryAccessRules,
    ) as run:
        yield run


async def test_deletions_and_creations_in_any_order(run: Run) -> None:
    bob, alice, carol = (
        rule("bob@example.com", "Viewer", at=T0),
        rule("alice@example.com", "L1 researcher", "project", "team-a", at=T0),
        rule("carol@example.com", "Viewer", at=T0),
    )
    again = rule("carol@example.com", "Viewer", at=T0 + timedelta(hours=1))

    async def scenario(store: AccessRules) -> Any:
        await store.record_created([bob, alice, carol, bob])
        await store.record_deleted([alice])
        await store.record_created([alice])  # late, redelivered: stays deleted
        await store.record_deleted([carol])
        await store.record_created([again])  # the same grant made again later
        await store.record_deleted([carol])  # the old deletion, late: the new grant stays
        in_force = sorted((r.subjectId, r.createdAt) for r in await store.access_rules())
        return in_force, len(await store.all_access_rules())

    in_force, known = await run(scenario)
    assert in_force == [("bob@example.com", T0), ("carol@example.com", again.createdAt)]
    assert known == 3
