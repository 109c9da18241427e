"""Bounded state: a service's inbox keeps an event's id only while the event could come again.

An inbox row lets a redelivered event be acknowledged and skipped. Once the event is older than
the streams keep anything (their ``max_age``), no delivery, replay or restarted consumer can
bring it back, so its row serves nothing: rows processed longer ago than the retention are
deleted, in short transactions, every ``interval``. The retention must be at least the streams'
``max_age`` (the default is one day more).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)


async def prune_inbox(
    engine: AsyncEngine, table: Table, *, older_than: timedelta, batch: int = 10_000
) -> int:
    """Delete the inbox rows processed before ``now - older_than``; how many were deleted.

    A batch per transaction: a large backlog (the first prune of an old installation) never
    holds locks for long, nor keeps the consumers' inserts waiting."""
    cutoff = datetime.now(UTC) - older_than
    total = 0
    while True:
        oldest = select(table.c.event_id).where(table.c.processed_at < cutoff).limit(batch)
        async with engine.begin() as conn:
            result = await conn.execute(delete(table).where(table.c.event_id.in_(oldest)))
        deleted = result.rowcount or 0
        total += deleted
        if deleted < batch:
            return total


async def prune_forever(
    engine: AsyncEngine, table: Table, *, retention: timedelta, interval: float, who: str
) -> None:
    """``prune_inbox`` now and every ``interval`` seconds; a failure (the database away) is
    logged and tried again at the next interval."""
    while True:
        try:
            deleted = await prune_inbox(engine, table, older_than=retention)
            if deleted:
                log.info("%s: %d inbox rows older than %s deleted", who, deleted, retention)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: pruning the inbox failed (%s); trying again later", who, exc)
        await asyncio.sleep(interval)
