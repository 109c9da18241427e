"""Transactional outbox: events are written in the same transaction as the state they describe,
and a relay publishes them afterwards, so the database and the bus never disagree."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from nats.js import JetStreamContext
from opentelemetry.context import Context
from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from berth.contracts.envelope import Event
from berth.shared.bus import encode, event_headers
from berth.shared.telemetry import inject

log = logging.getLogger(__name__)


def outbox_row(event: Event, trace_context: Context | None = None) -> dict[str, Any]:
    return {
        "subject": event.subject_name,
        "payload": encode(event),
        "headers": event_headers(event, inject(trace_context)),
    }


async def write(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        # executemany: one round trip for the whole batch.
        await conn.execute(table.insert(), rows)


class OutboxRelay:
    """Publishes outbox rows in order, awaiting their acks in bulk, then deletes them.

    Woken right after a commit by the process that wrote the rows; it also polls, so rows left
    by a crash (or written by another replica) are published too.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        js: JetStreamContext,
        *,
        batch_size: int = 1000,
        poll_seconds: float = 1.0,
        ack_timeout: float = 5.0,
    ) -> None:
        self._engine = engine
        self._table = table
        self._js = js
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._ack_timeout = ack_timeout
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # One last drain so that a clean shutdown leaves nothing behind.
        try:
            await self.drain()
        except Exception:  # the broker may already be gone; rows stay for the next start
            log.warning("outbox: final drain failed; rows stay for the next start", exc_info=True)

    async def _run(self) -> None:
        backoff = self._poll_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            self._wake.clear()
            try:
                await self.drain()
                backoff = self._poll_seconds
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox: publish failed, retrying", exc_info=True)
                backoff = min(backoff * 2, 10.0)

    async def drain(self) -> int:
        total = 0
        while True:
            sent = await self._publish_batch()
            total += sent
            if sent < self._batch_size:
                self.published += total
                return total

    async def _publish_batch(self) -> int:
        t = self._table
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(t.c.id, t.c.subject, t.c.payload, t.c.headers)
                    .order_by(t.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            futures = [
                await self._js.publish_async(r.subject, r.payload, headers=r.headers) for r in rows
            ]
            # A failed ack raises here and rolls back: the rows are published again later and
            # the stream's duplicate window drops the copies that did get through. A lost ack
            # (the broker died with the publishes in flight) never comes: stop waiting for it.
            await asyncio.wait_for(asyncio.gather(*futures), timeout=self._ack_timeout)
            await conn.execute(delete(t).where(t.c.id.in_([r.id for r in rows])))
        return len(rows)
