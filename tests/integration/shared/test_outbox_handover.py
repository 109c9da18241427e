"""The rows a unit of work commits are handed to the outbox relay and published from memory:
one DELETE after the acks, no read of the table and no transaction of the relay's own. A row
that does not go out cleanly sends the relay back to reading the table, which sets it aside and
publishes the rest in id order; the next unit of work is published from memory again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Table, event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.contracts.events import WorkloadActionDeniedV1
from berth.shared import outbox
from berth.shared.consumer import unit_of_work
from berth.shared.db import OUTBOX, create_engine, ensure_schema, service_metadata
from berth.shared.outbox import OutboxRelay
from tests.integration.shared.helpers import denied, eventually, unique


@pytest.fixture
async def outbox_table(database_url: str) -> AsyncIterator[tuple[AsyncEngine, Table]]:
    schema = "t_" + unique("handover").replace("-", "_")
    metadata = service_metadata(schema)
    engine = create_engine(database_url)
    await ensure_schema(engine, schema)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine, metadata.tables[f"{schema}.{OUTBOX}"]
    await engine.dispose()


@dataclass
class Heard:
    """The subject ids of this test's events that reach NATS, in arrival order."""

    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    subjects: list[str] = field(default_factory=list)


@pytest.fixture
async def heard(nc: Any) -> AsyncIterator[Heard]:
    found = Heard()

    async def arrived(msg: Any) -> None:
        if found.run in msg.subject:
            found.subjects.append(msg.subject.rpartition(".")[2])

    sub = await nc.subscribe(f"{WorkloadActionDeniedV1.subject_prefix()}.*", cb=arrived)
    await nc.flush()
    yield found
    await sub.unsubscribe()


@pytest.fixture
async def relay(outbox_table: tuple[AsyncEngine, Table], nc: Any) -> AsyncIterator[OutboxRelay]:
    """A relay on the test's outbox, not started; it reads the table every minute only, so
    what a test sees published soon after a commit was published from memory."""
    engine, table = outbox_table
    relay = OutboxRelay(engine, table, nc.jetstream(), poll_seconds=60, service="probe")
    yield relay
    await relay.stop()


def statements_of(engine: AsyncEngine) -> list[str]:
    seen: list[str] = []

    def executed(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split())[:60])

    event.listen(engine.sync_engine, "before_cursor_execute", executed)
    return seen


async def pending(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_committed_rows_are_published_from_memory_in_commit_order(
    outbox_table: tuple[AsyncEngine, Table], relay: OutboxRelay, heard: Heard
) -> None:
    engine, table = outbox_table
    relay.start()
    await eventually(lambda: relay.published == 0 and relay._caught_up)
    seen = statements_of(engine)
    expected: list[str] = []
    for unit_number in range(3):
        async with unit_of_work(engine, table, relay) as unit:
            for i in range(4):
                expected.append(f"{heard.run}-{unit_number}-{i}")
                unit.emit(denied(expected[-1]))
    await eventually(lambda: len(heard.subjects) >= len(expected), timeout=10)
    await eventually(lambda: relay.published == len(expected))

    relay_statements = [s for s in seen if not s.startswith("INSERT")]
    assert heard.subjects == expected
    assert await pending(engine, table) == 0
    # One DELETE per batch the relay took from memory (one to three: the units may have
    # committed while it was publishing), and no SELECT of the rows.
    assert relay_statements, seen
    delete = f"DELETE FROM {table.schema}.outbox"
    assert all(s.startswith(delete) for s in relay_statements), seen
    assert 1 <= len(relay_statements) <= 3


async def test_a_row_that_cannot_be_published_sends_the_relay_back_to_the_table(
    outbox_table: tuple[AsyncEngine, Table], relay: OutboxRelay, heard: Heard
) -> None:
    engine, table = outbox_table
    relay.start()
    await eventually(lambda: relay._caught_up)
    first = [f"{heard.run}-a-{i}" for i in range(3)]
    async with unit_of_work(engine, table, relay) as unit:
        unit.emit(denied(first[0]))
        # Written as is: a subject no event type makes, which NATS cannot take.
        bad = outbox.outbox_row(denied(f"{heard.run}-bad"))
        unit.rows.append({**bad, "subject": f"{bad['subject']} with spaces"})
        unit.emit(denied(first[1]))
        unit.emit(denied(first[2]))
    await eventually(lambda: relay.dead_lettered == 1, timeout=10)
    await eventually(lambda: len(heard.subjects) >= len(first), timeout=10)
    await eventually(lambda: relay._caught_up)
    assert heard.subjects[: len(first)] == first
    assert await pending(engine, table) == 0

    # Caught up again: the next unit's rows leave from memory.
    seen = statements_of(engine)
    later = [f"{heard.run}-b-{i}" for i in range(2)]
    async with unit_of_work(engine, table, relay) as unit:
        for subject_id in later:
            unit.emit(denied(subject_id))
    await eventually(lambda: len(heard.subjects) >= len(first) + len(later), timeout=10)
    # The set-aside row counts as handled, as rows read from the table do.
    await eventually(lambda: relay.published == len(first) + 1 + len(later))
    reads = [s for s in seen if s.startswith("SELECT")]
    # Each event went out once.
    assert heard.subjects == first + later
    assert not reads, seen


async def test_rows_handed_over_before_the_first_read_are_published_by_it(
    outbox_table: tuple[AsyncEngine, Table], relay: OutboxRelay, heard: Heard
) -> None:
    """Until a read of the table found it drained, rows handed over are left to the reads:
    older rows (a crash's leftovers) go out first, in id order."""
    engine, table = outbox_table
    leftover = [f"{heard.run}-old-{i}" for i in range(3)]
    async with engine.begin() as conn:
        await outbox.write(conn, table, [outbox.outbox_row(denied(s)) for s in leftover])
    fresh = [f"{heard.run}-new-{i}" for i in range(2)]
    async with unit_of_work(engine, table, relay) as unit:
        for subject_id in fresh:
            unit.emit(denied(subject_id))
    assert relay._handed == []  # not started: nothing read yet
    relay.start()
    await eventually(lambda: len(heard.subjects) >= 5, timeout=10)
    await eventually(lambda: relay.published == 5)
    assert heard.subjects == leftover + fresh
    assert await pending(engine, table) == 0
