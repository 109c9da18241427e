"""Two replicas of a service relay one outbox at once: every row is published once, by one of
them. Each relay locks the rows it takes (``FOR UPDATE SKIP LOCKED``), so the other skips them
rather than publishing them too. What is counted is every publish that reached NATS (a core
subscription sees each one, also a copy the stream's duplicate window would drop), not what the
stream stored."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

from berth.contracts.events import WorkloadActionDeniedV1
from berth.shared.bus import connect
from berth.shared.db import OUTBOX, create_engine, ensure_schema, service_metadata
from berth.shared.outbox import OutboxRelay, outbox_row
from tests.integration.shared.helpers import denied, eventually, unique

ROWS = 3000


async def test_two_relays_on_one_outbox_publish_every_row_once(
    nats_url: str, database_url: str
) -> None:
    schema = "t_" + unique("relays").replace("-", "_")
    metadata = service_metadata(schema)
    table = metadata.tables[f"{schema}.{OUTBOX}"]
    engines = [create_engine(database_url), create_engine(database_url)]
    clients = [await connect(nats_url, name=f"relay-{i}") for i in range(2)]
    listener = await connect(nats_url, name="relay-listener")
    try:
        await ensure_schema(engines[0], schema)
        async with engines[0].begin() as conn:
            await conn.run_sync(metadata.create_all)
        # Subject ids of this test only: what the listener counts is ours.
        run = uuid.uuid4().hex[:8]
        ids = [f"{run}-{i}" for i in range(ROWS)]
        rows = [outbox_row(denied(s)) for s in ids]
        events = {r["headers"]["Nats-Msg-Id"]: r["subject"] for r in rows}
        async with engines[0].begin() as conn:
            await conn.execute(table.insert(), rows)

        seen: Counter[str] = Counter()

        async def heard(msg: object) -> None:
            seen[msg.headers["Nats-Msg-Id"]] += 1  # type: ignore[attr-defined]

        sub = await listener.subscribe(f"{WorkloadActionDeniedV1.subject_prefix()}.*", cb=heard)
        await listener.flush()
        relays = [
            OutboxRelay(engine, table, nc.jetstream(), batch_size=100, service="probe")
            for engine, nc in zip(engines, clients, strict=True)
        ]
        # Both drain at once, each batch by batch, until the outbox is empty.
        await asyncio.gather(*(relay.drain() for relay in relays))
        await eventually(lambda: sum(seen[e] for e in events) >= ROWS, timeout=20)
        await asyncio.sleep(0.5)  # a second copy, were there one, would have arrived by now
        await sub.unsubscribe()

        assert {e: seen[e] for e in events if seen[e] != 1} == {}
        # Shared: both relays did part of the work, and together exactly all of it.
        assert all(relay.published > 0 for relay in relays), [r.published for r in relays]
        assert sum(relay.published for relay in relays) == ROWS
        async with engines[0].connect() as conn:
            assert (await conn.execute(table.select())).first() is None
    finally:
        for nc in [*clients, listener]:
            await nc.close()
        for engine in engines:
            await engine.dispose()
