"""Transactional outbox: events are written in the same transaction as the state they describe,
and a relay publishes them afterwards, so the database and the bus never disagree."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
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
from berth.shared import bulk, db, deadletters
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


async def write(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows``; their ids, in the order of ``rows``."""
    if not rows:
        return []
    # One statement for the whole batch, the rows in the order they were emitted: their ids,
    # the order the relay publishes them in, are drawn in the order unnest yields them, so the
    # ids sorted are the rows' ids in order whatever order RETURNING gives them back in.
    bulk_insert = bulk.statement(table, rows, returning="id")
    if bulk_insert is None:
        returning = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        return list((await conn.execute(returning, rows)).scalars())
    return sorted((await conn.execute(*bulk_insert)).scalars())


@dataclass(frozen=True, slots=True)
class Pending:
    """An outbox row as its unit of work wrote it, handed to the relay after the commit."""

    id: int
    subject: str
    payload: bytes
    headers: dict[str, str]


class OutboxRelay:
    """Publishes outbox rows, awaiting their acks in bulk, then deletes them.

    The rows a unit of work committed are handed over with their ids (``hand_over``) and
    published from memory in commit order, then deleted with one statement: no transaction and
    no read of the table for them. The table is read (oldest first, rows locked so that
    replicas skip each other's) when the relay starts, every ``poll_seconds``, when woken with
    ``wake``, and whenever a publish did not go cleanly: rows left by a crash, by another
    replica, or by a failed publish are published that way, and the rows handed over meanwhile
    are left to that read, so that what follows a failure still leaves in id order. A row that
    another replica's read takes between the commit and its publish from memory goes out twice:
    the stream's duplicate window (``Nats-Msg-Id``) drops the copy.

    A row that can never be published (a subject that is not a valid subject, a payload over
    the server's limit, a publish the stream never acknowledges while others are) is moved to
    the DEADLETTER stream with the reason and the relay carries on: one row must not hold back
    every later event.
    """

    # Attempts without an acknowledgement, while NATS is connected, before a row is set aside.
    MAX_UNACKED_ATTEMPTS = 5
    # Rows held in memory at most, in batches; beyond it (the broker is slower than the
    # writers) the relay reads them from the table instead.
    MAX_HANDED_BATCHES = 10

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
        self._statements = db.autocommit(engine)
        self._table = table
        self._js = js
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._ack_timeout = ack_timeout
        self._service = service
        self._wake = asyncio.Event()
        self._poll_asked = True
        self._task: asyncio.Task[None] | None = None
        self._unacked: dict[int, int] = {}
        # Rows handed over are published from memory only while nothing older is waiting in
        # the table: until a read of the table found it drained, they are left to the reads.
        self._caught_up = False
        self._handed: list[Pending] = []
        # Built once: the same statements serve every batch (the ids go as one array
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
        """Read the table now: rows may be there that were not handed over."""
        self._poll_asked = True
        self._wake.set()

    def hand_over(self, ids: Sequence[int], rows: Sequence[dict[str, Any]]) -> None:
        """Publish these committed rows (``write``'s ids and the rows it wrote)."""
        if self._caught_up and (
            len(self._handed) + len(rows) <= self.MAX_HANDED_BATCHES * self._batch_size
        ):
            self._handed.extend(
                Pending(i, r["subject"], r["payload"], r["headers"])
                for i, r in zip(ids, rows, strict=True)
            )
        else:
            # Left to a read of the table, which may be under way and past these rows already.
            self._fall_behind()
            self._poll_asked = True
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
        loop = asyncio.get_running_loop()
        backoff = self._poll_seconds
        failing = False
        next_read = loop.time()
        while True:
            wait = backoff if failing else max(0.0, next_read - loop.time())
            if not self._wake.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()
            try:
                if self._handed:
                    await self._publish_handed()
                if self._poll_asked or not self._caught_up or loop.time() >= next_read:
                    self._poll_asked = False
                    await self.drain()
                    next_read = loop.time() + self._poll_seconds
                if failing:
                    log.info("outbox: publishing again")
                backoff, failing = self._poll_seconds, False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._fall_behind()
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

    def _fall_behind(self) -> None:
        """Leave every row to the reads of the table until one finds it drained."""
        self._caught_up = False
        self._handed.clear()

    async def _publish_handed(self) -> None:
        while self._handed and self._caught_up:
            batch = self._handed[: self._batch_size]
            del self._handed[: self._batch_size]
            done, aside, outage, unacked = await self._publish(batch)
            if aside or outage is not None or unacked:
                # What went wrong is sorted out by the read that follows (setting rows aside,
                # counting attempts): it publishes the rest again, in id order.
                self._fall_behind()
            if done:
                try:
                    async with self._statements.connect() as conn:
                        await conn.execute(self._delete, {"ids": done})
                except Exception:
                    # Published but still in the table: the next read publishes them again,
                    # and the stream's duplicate window drops the copies.
                    self._fall_behind()
                    raise
                self.published += len(done)

    async def drain(self) -> int:
        total = 0
        while True:
            sent = await self._publish_batch()
            total += sent
            if sent < self._batch_size:
                self.published += total
                self._caught_up = True
                return total

    async def _publish_batch(self) -> int:
        async with self._engine.begin() as conn:
            rows = (await conn.execute(self._next_rows)).all()
            if not rows:
                return 0
            done, aside, outage, unacked = await self._publish(rows)
            if unacked and self._connected() and not outage:
                # Acknowledged publishes of the same batch show the stream is there: a row
                # that never gets one (e.g. a subject this service may not publish) is set
                # aside after a few attempts.
                for r in unacked:
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
        if self._handed and done:
            # Rows handed over while this read ran, and published by it: not again.
            handled = set(done)
            self._handed = [p for p in self._handed if p.id not in handled]
        if outage is not None:
            raise outage
        if unacked:
            raise TimeoutError(f"{len(unacked)} publishes not acknowledged")
        return len(rows)

    async def _publish(
        self, rows: Sequence[Any]
    ) -> tuple[list[int], list[tuple[Any, str]], BaseException | None, list[Any]]:
        """Publish ``rows`` and await their acks: the ids acknowledged, the rows that can never
        be published (with why), the outage that stopped others, the rows not acknowledged."""
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
        # A lost ack (the broker died with the publishes in flight) never comes: stop waiting
        # for it. Rows not acknowledged stay and are published again later; the stream's
        # duplicate window drops the copies that did get through.
        finished, unfinished = (
            await asyncio.wait(pending, timeout=self._ack_timeout) if pending else (set(), set())
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
        unacked = []
        for future in unfinished:
            future.cancel()
            unacked.append(pending[future])
        return done, aside, outage, unacked

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
