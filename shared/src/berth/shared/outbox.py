"""Transactional outbox: events are written in the same transaction as the state they describe,
and a relay publishes them afterwards, so the database and the bus never disagree."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from datetime import UTC, datetime
from typing import Any

from nats.errors import BadHeaderError, BadSubjectError, MaxPayloadError
from nats.js import JetStreamContext
from nats.js.errors import APIError
from opentelemetry.context import Context
from sqlalchemy import Table, any_, bindparam, delete, select
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from berth.contracts.envelope import Event
from berth.contracts.subjects import subject_token_problem
from berth.shared import bulk, deadletters
from berth.shared.bus import encode, event_headers
from berth.shared.telemetry import inject

log = logging.getLogger(__name__)


def outbox_row(event: Event, trace_context: Context | None = None) -> dict[str, Any]:
    """The row publishing ``event`` in ``trace_context`` (or the current one)."""
    return {
        "subject": event.subject_name,
        "payload": encode(event),
        "headers": event_headers(event, inject(trace_context)),
    }


async def write(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    # One statement for the whole batch, the rows in the order they were emitted (their ids,
    # the order the relay publishes them in, are drawn in the order unnest yields them).
    bulk_insert = bulk.statement(table, rows)
    if bulk_insert is None:
        await conn.execute(table.insert(), rows)
    else:
        await conn.execute(*bulk_insert)


class OutboxRelay:
    """Publishes outbox rows in order, awaiting their acks in bulk, then deletes them.

    Woken right after a commit by the process that wrote the rows; it also polls, so rows left
    by a crash (or written by another replica) are published too. A row that can never be
    published (a subject that is not a valid subject, a payload over the server's limit, a
    publish the stream never acknowledges while others are) is moved to the DEADLETTER stream
    with the reason and the relay carries on: one row must not hold back every later event.
    """

    # Attempts without an acknowledgement, while NATS is connected, before a row is set aside.
    MAX_UNACKED_ATTEMPTS = 5

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        js: JetStreamContext,
        *,
        batch_size: int = 1000,
        poll_seconds: float = 1.0,
        ack_timeout: float = 5.0,
        service: str = "berth",
    ) -> None:
        self._engine = engine
        self._table = table
        self._js = js
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._ack_timeout = ack_timeout
        self._service = service
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unacked: dict[int, int] = {}
        # Built once: the same two statements serve every batch (the ids go as one array
        # parameter, so the delete's text does not depend on how many rows it deletes; an IN
        # list is prepared anew by the server for every length it has).
        self._next_rows = (
            select(table.c.id, table.c.subject, table.c.payload, table.c.headers)
            .order_by(table.c.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        self._delete = delete(table).where(
            table.c.id == any_(bindparam("ids", type_=ARRAY(BIGINT)))
        )
        self.published = 0
        self.dead_lettered = 0
        self.last_dead_letter_at: datetime | None = None

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
        except Exception as exc:  # the broker may already be gone; rows stay for the next start
            log.warning("outbox: final drain failed (%s); rows stay for the next start", exc)

    async def _run(self) -> None:
        backoff = self._poll_seconds
        failing = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            self._wake.clear()
            try:
                await self.drain()
                if failing:
                    log.info("outbox: publishing again")
                backoff, failing = self._poll_seconds, False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                backoff = min(backoff * 2, 10.0)
                # One line per retry with the cause; the traceback once per episode.
                log.warning(
                    "outbox: publish failed (%s: %s); retrying in %gs",
                    type(exc).__name__,
                    str(exc).splitlines()[0][:300] if str(exc) else "",
                    backoff,
                    exc_info=None if failing else exc,
                )
                failing = True

    async def drain(self) -> int:
        total = 0
        while True:
            sent = await self._publish_batch()
            total += sent
            if sent < self._batch_size:
                self.published += total
                return total

    async def _publish_batch(self) -> int:
        async with self._engine.begin() as conn:
            rows = (await conn.execute(self._next_rows)).all()
            if not rows:
                return 0
            done: list[int] = []
            aside: list[tuple[Any, str]] = []
            pending: dict[asyncio.Future[Any], Any] = {}
            for r in rows:
                problem = subject_problem(r.subject)
                if problem:
                    aside.append((r, problem))
                    continue
                try:
                    future = await self._js.publish_async(r.subject, r.payload, headers=r.headers)
                except (BadSubjectError, MaxPayloadError, BadHeaderError) as exc:
                    aside.append((r, f"cannot be published: {type(exc).__name__} {exc}"))
                    continue
                pending[future] = r
            # A lost ack (the broker died with the publishes in flight) never comes: stop
            # waiting for it. Rows not acknowledged stay and are published again later; the
            # stream's duplicate window drops the copies that did get through.
            finished, unfinished = (
                await asyncio.wait(pending, timeout=self._ack_timeout)
                if pending
                else (set(), set())
            )
            outage: BaseException | None = None
            for future in finished:
                r = pending[future]
                error = future.exception()
                if error is None:
                    done.append(r.id)
                elif _row_error(error):
                    aside.append((r, f"refused by the stream: {type(error).__name__} {error}"))
                else:
                    outage = outage or error
            for future in unfinished:
                future.cancel()
                if self._connected() and not outage:
                    # Acknowledged publishes of the same batch show the stream is there: a row
                    # that never gets one (e.g. a subject this service may not publish) is
                    # set aside after a few attempts.
                    r = pending[future]
                    strikes = self._unacked.get(r.id, 0) + 1
                    self._unacked[r.id] = strikes
                    if strikes >= self.MAX_UNACKED_ATTEMPTS:
                        aside.append((r, f"no acknowledgement after {strikes} attempts"))
            for r, reason in aside:
                await self._set_aside(r, reason)
                done.append(r.id)
            if done:
                await conn.execute(self._delete, {"ids": done})
            for row_id in done:
                self._unacked.pop(row_id, None)
        if outage is not None:
            raise outage
        if unfinished:
            raise TimeoutError(f"{len(unfinished)} publishes not acknowledged")
        return len(rows)

    async def _set_aside(self, row: Any, reason: str) -> None:
        log.error("outbox: setting aside %r: %s", row.subject, reason)
        await deadletters.publish(
            self._js,
            self._service,
            row.subject,
            bytes(row.payload),
            dict(row.headers or {}),
            reason,
            origin="outbox",
        )
        self.dead_lettered += 1
        self.last_dead_letter_at = datetime.now(UTC)

    def _connected(self) -> bool:
        nc = getattr(self._js, "_nc", None)
        return bool(nc is not None and nc.is_connected)


# An empty token, a wildcard or whitespace anywhere makes a subject unpublishable.
_INVALID_SUBJECT = re.compile(r"(?:^|\.)(?:\.|$)|[*>\s]")


def subject_problem(subject: str) -> str | None:
    """Why ``subject`` cannot be published to, or None."""
    if _INVALID_SUBJECT.search(subject):
        return f"invalid subject {subject!r}"
    return subject_token_problem(subject.rpartition(".")[2])


def _row_error(exc: BaseException) -> bool:
    """An error of the row itself, not of the connection: publishing it again cannot help."""
    if isinstance(exc, BadSubjectError | MaxPayloadError | BadHeaderError):
        return True
    # JetStream API errors other than "unavailable" (503), e.g. a message too large for the
    # stream or a wrong expected stream.
    return isinstance(exc, APIError) and exc.code not in (None, 503, 408)
