"""The inbox claim against PostgreSQL: one statement per batch, whatever its size, that tells
new events from redeliveries and from reused ids."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import MetaData, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from berth.shared.consumer import claim
from berth.shared.db import INBOX, ensure_schema, inbox_columns, service_metadata

SCHEMA = "inbox_test"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    await ensure_schema(engine, SCHEMA)
    yield engine
    await engine.dispose()


@pytest.fixture
async def inbox(engine: AsyncEngine) -> Table:
    metadata = service_metadata(SCHEMA)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return metadata.tables[f"{SCHEMA}.{INBOX}"]


async def test_a_batch_is_claimed_once_with_its_digests(engine: AsyncEngine, inbox: Table) -> None:
    ids = [uuid.uuid4() for _ in range(300)]
    digests = [f"d{i}" for i in range(300)]
    async with engine.begin() as conn:
        fresh, reused = await claim(conn, inbox, ids, digests)
    assert (fresh, reused) == (set(ids), set())
    async with engine.connect() as conn:
        rows = dict((await conn.execute(select(inbox.c.event_id, inbox.c.digest))).all())
    assert rows == dict(zip(ids, digests, strict=True))


async def test_redeliveries_are_not_fresh_and_a_reused_id_is_told_apart(
    engine: AsyncEngine, inbox: Table
) -> None:
    old, reused_id, new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as conn:
        await claim(conn, inbox, [old, reused_id], ["a", "b"])
    # Batches of several sizes share one statement.
    async with engine.begin() as conn:
        fresh, reused = await claim(conn, inbox, [old, reused_id, new], ["a", "other", "c"])
    assert fresh == {new}
    assert reused == {reused_id}


async def test_without_digests_and_with_a_repeated_id(engine: AsyncEngine, inbox: Table) -> None:
    first = uuid.uuid4()
    async with engine.begin() as conn:
        fresh, reused = await claim(conn, inbox, [first, first])
    assert (fresh, reused) == ({first}, set())
    async with engine.begin() as conn:
        # A redelivery of an id recorded without a digest is a redelivery, never a reuse.
        fresh, reused = await claim(conn, inbox, [first], ["any"])
    assert (fresh, reused) == (set(), set())
    async with engine.begin() as conn:
        assert await claim(conn, inbox, []) == (set(), set())


async def test_an_inbox_without_a_digest_column(engine: AsyncEngine) -> None:
    # The inbox as it was before the digest column was added.
    metadata = MetaData(schema=SCHEMA)
    table = Table("old_inbox", metadata, *inbox_columns())
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    ids = [uuid.uuid4(), uuid.uuid4()]
    async with engine.begin() as conn:
        assert await claim(conn, table, ids, ["a", "b"]) == (set(ids), set())
    async with engine.begin() as conn:
        assert await claim(conn, table, ids, ["c", "d"]) == (set(), set())
