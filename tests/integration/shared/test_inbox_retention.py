"""The inbox keeps an event's id for the retention, then the prune deletes it: rows processed
before the cutoff go, in batches, and newer ones stay (they still skip redeliveries)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from berth.shared.consumer import claim
from berth.shared.db import INBOX, create_engine, ensure_schema, service_metadata
from berth.shared.retention import prune_inbox
from tests.integration.shared.helpers import unique


async def test_prune_deletes_only_rows_older_than_the_retention(database_url: str) -> None:
    schema = "t_" + unique("inbox").replace("-", "_")
    metadata = service_metadata(schema)
    table = metadata.tables[f"{schema}.{INBOX}"]
    engine = create_engine(database_url)
    try:
        await ensure_schema(engine, schema)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        now = datetime.now(UTC)
        old = [uuid.uuid4() for _ in range(25)]
        recent = [uuid.uuid4() for _ in range(7)]
        async with engine.begin() as conn:
            await conn.execute(
                table.insert(),
                [{"event_id": i, "processed_at": now - timedelta(days=40)} for i in old]
                + [{"event_id": i, "processed_at": now - timedelta(days=2)} for i in recent],
            )
            # Just handled: recorded by the consumers' own claim.
            fresh, _ = await claim(conn, table, [uuid.uuid4()])
        assert len(fresh) == 1

        # A batch smaller than the backlog: the prune keeps going until none is left.
        deleted = await prune_inbox(engine, table, older_than=timedelta(days=31), batch=10)
        assert deleted == len(old)
        async with engine.connect() as conn:
            kept = set((await conn.execute(select(table.c.event_id))).scalars())
            assert kept >= set(recent) and not kept & set(old)
            assert await conn.scalar(select(func.count()).select_from(table)) == len(recent) + 1
            # What is kept still tells a redelivery from a new event.
            again, _ = await claim(conn, table, recent)
            assert again == set()
        assert await prune_inbox(engine, table, older_than=timedelta(days=31)) == 0
    finally:
        await engine.dispose()
