"""The outbox relay publishes the next batch while the one before still waits for its
acknowledgements and the deletion of its rows, and the events still leave in the order of the
rows. PostgreSQL is real (the rows of the batch in flight stay locked and are skipped); the
JetStream side is a stand-in whose acknowledgements the test releases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.contracts.envelope import Actor
from berth.contracts.events import WorkloadActionDeniedData, WorkloadActionDeniedV1
from berth.shared.db import OUTBOX, create_engine, ensure_schema, service_metadata
from berth.shared.outbox import OutboxRelay, outbox_row
from tests.integration.shared.helpers import eventually, unique


class HeldAcks:
    """Records each publish (subject id, in order) and acknowledges only when told to."""

    def __init__(self) -> None:
        self.published: list[str] = []
        self.acks: list[asyncio.Future[Any]] = []

    async def publish_async(self, subject: str, _payload: bytes, **_kw: Any) -> asyncio.Future[Any]:
        self.published.append(subject.rpartition(".")[2])
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack

    def acknowledge(self) -> None:
        for ack in self.acks:
            if not ack.done():
                ack.set_result(None)


async def acknowledging(js: HeldAcks) -> None:
    """Acknowledge every publish soon after it is made, for as long as it runs."""
    while True:
        js.acknowledge()
        await asyncio.sleep(0.01)


def denied(subject_id: str) -> dict[str, Any]:
    return outbox_row(
        WorkloadActionDeniedV1(
            source="/berth/tests",
            subject=subject_id,
            actor=Actor(email="tester@example.com"),
            data=WorkloadActionDeniedData.model_validate(
                {"action": "delete", "name": "w", "project": "p", "reason": "test"}
            ),
        )
    )


@pytest.fixture
async def outbox(database_url: str) -> AsyncIterator[tuple[AsyncEngine, Table]]:
    schema = "t_" + unique("pipelining").replace("-", "_")
    metadata = service_metadata(schema)
    engine = create_engine(database_url)
    await ensure_schema(engine, schema)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield engine, metadata.tables[f"{schema}.{OUTBOX}"]
    finally:
        await engine.dispose()


async def write(engine: AsyncEngine, table: Table, subject_ids: list[str]) -> None:
    async with engine.begin() as conn:
        await conn.execute(table.insert(), [denied(s) for s in subject_ids])


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def test_rows_committed_while_a_batch_awaits_its_acks_are_published_meanwhile(
    outbox: tuple[AsyncEngine, Table],
) -> None:
    engine, table = outbox
    js = HeldAcks()
    relay = OutboxRelay(engine, table, js, poll_seconds=0.2)  # type: ignore[arg-type]
    relay.start()
    try:
        await write(engine, table, ["a1", "a2"])
        relay.wake()
        await eventually(lambda: js.published == ["a1", "a2"], timeout=10)

        # The first batch is not acknowledged yet: its rows are still there, locked.
        await write(engine, table, ["b1"])
        relay.wake()
        await eventually(lambda: js.published == ["a1", "a2", "b1"], timeout=10)
        assert await count(engine, table) == 3

        js.acknowledge()

        async def emptied() -> bool:
            return await count(engine, table) == 0

        await eventually(emptied, timeout=10)
        # Each row once: the batch in flight was skipped, not published again.
        assert js.published == ["a1", "a2", "b1"]
        assert relay.published == 3
    finally:
        js.acknowledge()
        await relay.stop()


async def test_batch_after_batch_the_events_leave_in_the_order_of_the_rows(
    outbox: tuple[AsyncEngine, Table],
) -> None:
    engine, table = outbox
    ids = [f"r{i:03d}" for i in range(23)]
    await write(engine, table, ids)
    js = HeldAcks()
    relay = OutboxRelay(engine, table, js, batch_size=5)  # type: ignore[arg-type]
    releaser = asyncio.create_task(acknowledging(js))
    try:
        assert await relay.drain() == len(ids)
    finally:
        releaser.cancel()

    assert js.published == ids
    assert await count(engine, table) == 0


async def test_rows_of_a_batch_never_acknowledged_stay_for_the_next_attempt(
    outbox: tuple[AsyncEngine, Table],
) -> None:
    engine, table = outbox
    await write(engine, table, ["lost"])
    js = HeldAcks()
    relay = OutboxRelay(engine, table, js, ack_timeout=0.2)  # type: ignore[arg-type]

    with pytest.raises(TimeoutError):
        await relay.drain()

    # Rolled back, not deleted: published again by the next drain.
    assert await count(engine, table) == 1
    releaser = asyncio.create_task(acknowledging(js))
    try:
        assert await relay.drain() == 1
    finally:
        releaser.cancel()
    assert js.published == ["lost", "lost"]
    assert await count(engine, table) == 0
