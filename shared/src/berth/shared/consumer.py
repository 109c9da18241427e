"""Batch consumption: one transaction per fetched batch, one span per message.

Every message of a batch is decoded on its own (an undecodable one is dead-lettered and
terminated, never blocking the rest); duplicates are skipped through the inbox table; the handler
sees the batch and writes with batched statements; events it emits are written to the outbox in
the same transaction, each carrying the trace context of the message that caused it, so a
workload's trace stays intact inside a batch. If the batch fails, its messages are retried one by
one so that a single poison message cannot hold the others back.

Failures are of two kinds. An outage (the database or NATS unreachable, a timeout: see
``errors.is_transient``) says nothing about the messages: they are put back with a growing delay
and the loop pauses, for as long as it takes, and the consumer has no delivery limit. A
handler's own failure on a message counts: after ``max_deliver`` of them the message is
dead-lettered with the reason (``deadletters``), and the rest carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, Status, StatusCode
from pydantic import ValidationError
from sqlalchemy import Executable, Table, Text, any_, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from berth.contracts.envelope import Actor, Event
from berth.contracts.roles import FREE_SOURCE, source_of
from berth.contracts.subjects import stream_for
from berth.shared import deadletters, outbox
from berth.shared.errors import is_transient
from berth.shared.identity import Unauthenticated, Verifier
from berth.shared.outbox import OutboxRelay
from berth.shared.telemetry import context_of, extract, start_consumer_span

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)


@dataclass
class Incoming(Generic[E]):
    """One decoded message of a batch, with the span its handling is recorded in."""

    event: E
    span: Span
    msg: Msg


class UndeclaredEventError(TypeError):
    """A service emitted an event type it did not declare it publishes (``Service.publishes``):
    its AsyncAPI document and its NATS permissions would not match what it sends."""


@dataclass(frozen=True)
class Publishes:
    """The event types (type, version) a service declared it publishes, and the service's name."""

    service: str
    types: frozenset[tuple[str, int]]

    @classmethod
    def of(cls, service: str, events: Iterable[type[Event]]) -> Publishes:
        return cls(service, frozenset((e.TYPE, e.VERSION) for e in events))

    def check(self, event: Event) -> None:
        if (event.type, event.version) not in self.types:
            declared = ", ".join(f"{t} v{v}" for t, v in sorted(self.types)) or "nothing"
            raise UndeclaredEventError(
                f"{self.service} may not emit {event.type} v{event.version}: it declares it "
                f"publishes {declared} (add it to service.publishes(...))"
            )


@dataclass
class UnitOfWork:
    """What a batch handler may touch: the batch's connection, and ``emit`` into the outbox."""

    conn: AsyncConnection
    outbox_table: Table
    rows: list[dict[str, Any]] = field(default_factory=list)
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # What the service declared it publishes; None only where no service is involved.
    publishes: Publishes | None = None

    def emit(self, event: Event, cause: Cause = None) -> None:
        """Queue ``event`` for publication; it joins the trace of ``cause`` (or the current one).

        Raises ``UndeclaredEventError`` for a type the service did not declare it publishes."""
        if self.publishes is not None:
            self.publishes.check(event)
        self.rows.append(outbox.outbox_row(event, trace_context(cause)))


Cause = Incoming[Any] | SpanContext | Context | None
"""What an emitted event follows: the message that caused it, or a trace context when there is
no message (an event caused by something the cluster reported, say, continuing a stored trace)."""


def trace_context(cause: Cause) -> Context | None:
    """The context an event caused by ``cause`` is published in (None: the current one)."""
    if cause is None or isinstance(cause, Context):
        return cause
    if isinstance(cause, SpanContext):
        return trace.set_span_in_context(NonRecordingSpan(cause))
    return context_of(cause.span)


class Emitter(Protocol):
    """What a handler needs of its unit of work: ``emit`` into the outbox, and work to run once
    the transaction commits. A ``UnitOfWork`` in a service, a ``FakeUnitOfWork`` in unit tests."""

    after_commit: list[Callable[[], Awaitable[None]]]

    def emit(self, event: Event, cause: Cause = None) -> None: ...


BatchHandler = Callable[[list[Incoming[E]], UnitOfWork], Awaitable[None]]
UnitFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


@contextlib.asynccontextmanager
async def unit_of_work(
    engine: AsyncEngine,
    outbox_table: Table,
    relay: OutboxRelay,
    publishes: Publishes | None = None,
) -> AsyncIterator[UnitOfWork]:
    """One transaction in which state and the events it emits commit together (or neither).

    After the commit the rows are handed to the relay, so the events leave at once, then the
    unit's ``after_commit`` callbacks run. Batches run in one; so does any other write of a service.
    """
    async with engine.begin() as conn:
        unit = UnitOfWork(conn, outbox_table, publishes=publishes)
        yield unit
        ids = await outbox.write(conn, outbox_table, unit.rows)
    # Before the callbacks: the events are committed, and a callback's round trips (the
    # adapter applies objects to a cluster) must not hold them back.
    if unit.rows:
        relay.hand_over(ids, unit.rows)
    for callback in unit.after_commit:
        await callback()


@dataclass(frozen=True)
class Subscription(Generic[E]):
    """A durable batch subscription: which events, under which durable name, to which handler."""

    event: type[E]
    durable: str
    handler: BatchHandler[E]
    operation: str
    # Failed handling is retried with growing delays, then dead-lettered after max_deliver.
    max_deliver: int | None = None
    # Subject prefix to bind when ``event`` is a lenient decoder (e.g. RawEvent) of another type.
    subject_prefix: str | None = None

    @property
    def prefix(self) -> str:
        return self.subject_prefix or self.event.subject_prefix()


async def claim(
    conn: AsyncConnection, table: Table, ids: Sequence[UUID], digests: Sequence[str] | None = None
) -> tuple[set[UUID], set[UUID]]:
    """Record ``ids`` as processed. Return those not processed before, and those processed
    before with another content (a reused event id, when ``digests`` are given and the inbox
    recorded one): neither a redelivery to skip nor a new event to handle."""
    if not ids:
        return set(), set()
    with_digest = digests is not None and "digest" in table.c
    params: dict[str, Any] = {"ids": list(ids)}
    if with_digest:
        assert digests is not None
        params["digests"] = list(digests)
    fresh = set((await conn.execute(_claim_statement(table, with_digest), params)).scalars())
    reused: set[UUID] = set()
    if with_digest and len(fresh) < len(ids):
        assert digests is not None
        # Redeliveries only: the common batch has none and makes a single round trip.
        seen = {i: d for i, d in zip(ids, digests, strict=True) if i not in fresh}
        recorded = await conn.execute(
            select(table.c.event_id, table.c.digest).where(
                table.c.event_id == any_(cast(list(seen), ARRAY(PG_UUID(as_uuid=True))))
            )
        )
        reused = {r.event_id for r in recorded if r.digest and r.digest != seen[r.event_id]}
    return fresh, reused


_CLAIMS: dict[tuple[int, bool], tuple[Table, Executable]] = {}


def _claim_statement(table: Table, with_digest: bool) -> Executable:
    """``INSERT .. SELECT FROM unnest(:ids, :digests) ON CONFLICT DO NOTHING RETURNING``: one
    statement whatever the batch's size, so it is compiled once and sends two array
    parameters, where a multi-row VALUES is built, compiled and bound value by value for every
    batch size it meets."""
    key = (id(table), with_digest)
    cached = _CLAIMS.get(key)
    if cached is not None and cached[0] is table:
        return cached[1]
    arrays: list[Any] = [bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True)))]
    names = ["event_id"]
    if with_digest:
        arrays.append(bindparam("digests", type_=ARRAY(Text())))
        names.append("digest")
    rows = (
        func.unnest(*(cast(a, a.type) for a in arrays))
        .table_valued(*names)
        .render_derived(name="incoming")
    )
    stmt = (
        insert(table)
        .from_select(names, select(*(rows.c[n] for n in names)))
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )
    _CLAIMS[key] = (table, stmt)
    return stmt


class BatchRunner:
    """Runs batch handlers of one service."""

    def __init__(
        self,
        *,
        service: str,
        engine: AsyncEngine,
        outbox_table: Table,
        inbox_table: Table,
        relay: OutboxRelay,
        js: JetStreamContext,
        tracer: trace.Tracer,
        max_deliver: int,
        nak_delay: float,
        publishes: Publishes | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self.service = service
        self._publishes = publishes
        # Requests from UIs are handled only with the actor their bearer token proves.
        self._verifier = verifier
        self._engine = engine
        self._outbox = outbox_table
        self._inbox = inbox_table
        self._relay = relay
        self._js = js
        self._tracer = tracer
        self._max_deliver = max_deliver
        self._nak_delay = nak_delay
        # Handler failures per event, counted here: JetStream's delivery count also counts the
        # deliveries that failed only because the database or NATS was down.
        self._failures: dict[UUID, int] = {}
        self._outage_backoff: float | None = None
        self.last_dead_letter_at: datetime | None = None

    async def run(
        self,
        msgs: Sequence[Msg],
        event_type: type[E],
        handler: BatchHandler[E],
        operation: str,
        max_deliver: int | None = None,
    ) -> float:
        """Handle one fetched batch; returns how long the caller should pause before fetching
        again (non-zero while the database or NATS is unreachable)."""
        # A subscription's own limit on handler failures, else the service's.
        limit = max_deliver or self._max_deliver
        items: list[Incoming[E]] = []
        unauthenticated: list[tuple[Msg, Event, type[Event], str]] = []
        for msg in msgs:
            event, problem = _decode(msg, event_type)
            if event is None:
                await self._dead_letter(msg, problem)
                continue
            # Defence in depth behind the bus permissions: only the roles declared to emit a
            # type may be its source (a lenient decoder is checked as the type it carries).
            declared = Event.registry.get((event.type, event.version), event_type)
            if refused := declared.source_problem(event.source):
                await self._dead_letter(msg, refused)
                continue
            if self._verifier is not None and FREE_SOURCE.intersection(declared.PRODUCERS):
                # A UI's request: the actor is whoever its token proves, never what it claims.
                try:
                    actor = await self._verifier.actor(msg.headers)
                except Unauthenticated as exc:
                    unauthenticated.append((msg, event, declared, str(exc)))
                    continue
                event = event.model_copy(update={"actor": actor})
            span = start_consumer_span(
                self._tracer,
                operation,
                extract(msg.headers),
                {
                    "messaging.system": "nats",
                    "messaging.destination.name": msg.subject,
                    "messaging.message.id": str(event.id),
                    "berth.subject": event.subject,
                    "berth.event.type": event.type,
                },
            )
            items.append(Incoming(event, span, msg))
        if unauthenticated:
            await self._refuse(unauthenticated)
        if not items:
            return 0.0
        try:
            await self._commit(items, handler)
        except Exception as exc:
            if is_transient(exc):
                return await self._outage(items, exc, operation)
            if len(items) == 1:
                await self._failed(items[0], exc, limit, operation)
                return 0.0
            log.warning(
                "%s: batch of %d failed (%s); retrying one by one",
                operation,
                len(items),
                _cause(exc),
            )
            for index, item in enumerate(items):
                try:
                    await self._commit([item], handler)
                except Exception as one_exc:
                    if is_transient(one_exc):
                        return await self._outage(items[index:], one_exc, operation)
                    await self._failed(item, one_exc, limit, operation)
        if self._outage_backoff is not None:
            log.info("%s: %s reachable again; consuming", self.service, operation)
            self._outage_backoff = None
        return 0.0

    async def _commit(self, items: list[Incoming[E]], handler: BatchHandler[E]) -> None:
        # Two copies of one event can share a batch (a copy sent again once the duplicate
        # window had passed): one claim covers both, so only the first copy is handled.
        first = {i.event.id: i for i in reversed(items)}
        claimed = list(first.values())
        async with unit_of_work(self._engine, self._outbox, self._relay, self._publishes) as unit:
            fresh, reused = await claim(
                unit.conn,
                self._inbox,
                [i.event.id for i in claimed],
                [digest(i.msg.data) for i in claimed],
            )
            todo = [i for i in items if i.event.id in fresh and first[i.event.id] is i]
            if todo:
                await handler(todo, unit)
        for item in items:
            self._failures.pop(item.event.id, None)
            original = first[item.event.id]
            if item.event.id in reused or (
                original is not item and digest(item.msg.data) != digest(original.msg.data)
            ):
                item.span.end()
                await self._dead_letter(
                    item.msg,
                    f"event id {item.event.id} was already used for another content",
                    event=item.event,
                )
                continue
            if item.event.id not in fresh or first[item.event.id] is not item:
                item.span.set_attribute("berth.duplicate", True)
            item.span.end()
            await item.msg.ack()

    async def _refuse(self, refusals: list[tuple[Msg, Event, type[Event], str]]) -> None:
        """Answer each request whose sender is not authenticated with its type's rejection
        event (through the outbox, once: the inbox records it), or dead-letter it with the
        reason when the type has none. Never a silent drop."""
        source, actor = source_of(self.service), Actor.system(self.service)
        answers: list[tuple[Msg, Event, Event | None, str]] = []
        for msg, event, declared, reason in refusals:
            log.warning(
                "%s: refused %s: %s", self.service, msg.subject, reason, extra=_context(event)
            )
            answer = declared.refused(event, reason, source=source, actor=actor)
            answers.append((msg, event, answer, reason))
        answered = [(m, e, a) for m, e, a, _ in answers if a is not None]
        try:
            if answered:
                async with unit_of_work(
                    self._engine, self._outbox, self._relay, self._publishes
                ) as unit:
                    fresh, _ = await claim(unit.conn, self._inbox, [e.id for _, e, _ in answered])
                    for msg, event, answer in answered:
                        if event.id in fresh and answer is not None:
                            unit.emit(answer, extract(msg.headers))
        except Exception as exc:
            if is_transient(exc):
                log.warning("%s: refusals retried (%s)", self.service, _cause(exc))
                for msg, *_ in answers:
                    await msg.nak(delay=OUTAGE_FIRST_DELAY)
                return
            for msg, event, _answer, reason in answers:
                await self._dead_letter(msg, f"{reason} (answering failed: {_cause(exc)})", event)
            return
        for msg, event, answer, reason in answers:
            if answer is None:
                await self._dead_letter(msg, reason, event=event)
            else:
                await msg.ack()

    async def _outage(self, items: list[Incoming[Any]], exc: Exception, operation: str) -> float:
        """The database or NATS is unreachable: nothing is wrong with these messages. They
        come back after a growing delay, for as long as it takes, and never count as failed
        (the consumer has no delivery limit; only handler failures lead to a dead letter)."""
        previous = self._outage_backoff
        first = previous is None
        delay = OUTAGE_FIRST_DELAY if previous is None else min(previous * 2, OUTAGE_MAX_DELAY)
        self._outage_backoff = delay
        log.warning(
            "%s: %s unavailable (%s); %d messages retried in %gs",
            self.service,
            operation,
            _cause(exc),
            len(items),
            delay,
            # The traceback once per outage, not at every retry.
            exc_info=exc if first else None,
        )
        for item in items:
            item.span.set_status(Status(StatusCode.ERROR, f"unavailable: {_cause(exc)}"))
            item.span.end()
            await item.msg.nak(delay=delay)
        return delay

    async def _failed(
        self, item: Incoming[Any], exc: Exception, max_deliver: int, operation: str
    ) -> None:
        item.span.record_exception(exc)
        item.span.set_status(Status(StatusCode.ERROR, str(exc)))
        item.span.end()
        event_id = item.event.id
        failures = self._failures.get(event_id, 0) + 1
        if failures >= max_deliver:
            self._failures.pop(event_id, None)
            await self._dead_letter(
                item.msg, f"gave up after {failures} deliveries: {_cause(exc)}", event=item.event
            )
            return
        self._failures[event_id] = failures
        log.warning(
            "%s: %s failed on %s (attempt %d of %d): %s; retrying",
            self.service,
            operation,
            item.msg.subject,
            failures,
            max_deliver,
            _cause(exc),
            extra=_context(item.event),
            # The traceback with the first failure only; later ones repeat it.
            exc_info=exc if failures == 1 else None,
        )
        await item.msg.nak(delay=self._nak_delay * failures)

    async def _dead_letter(self, msg: Msg, reason: str, event: Event | None = None) -> None:
        """Keep an unusable message in the DEADLETTER stream with the reason, then terminate it."""
        log.error(
            "%s: dead-lettering %r: %s",
            self.service,
            msg.subject,
            reason,
            extra=_context(event) if event else {},
        )
        await deadletters.publish(
            self._js,
            self.service,
            msg.subject,
            msg.data,
            dict(msg.headers or {}),
            reason,
            origin="consumer",
        )
        self.last_dead_letter_at = datetime.now(UTC)
        await msg.term()


# Pauses of a consumer while the database or NATS is unreachable.
OUTAGE_FIRST_DELAY = 1.0
OUTAGE_MAX_DELAY = 15.0


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def _context(event: Event | None) -> dict[str, Any]:
    if event is None:
        return {}
    return {"event_id": str(event.id), "workload_id": event.subject}


def _decode(msg: Msg, event_type: type[E]) -> tuple[E | None, str]:
    """The event, or why the message cannot be one (it is then dead-lettered)."""
    try:
        event = event_type.model_validate_json(msg.data)
    except ValidationError as exc:
        return None, f"undecodable {event_type.__name__}: {exc}"
    prefix, _, token = msg.subject.rpartition(".")
    if event.subject != token:
        # Neither can be trusted over the other: whichever is used, somebody is misled.
        return None, (
            f"envelope subject {event.subject!r} differs from the subject's last token {token!r}"
        )
    if not event_type.TYPE:
        # A lenient decoder takes any envelope: the type and version must be the subject's.
        known = Event.registry.get((event.type, event.version))
        if known is None or known.subject_prefix() != prefix:
            return None, (
                f"event type {event.type!r} version {event.version} does not belong on {prefix}"
            )
    return event, ""


class PullLoop:
    """Fetches batches for one durable pull consumer and hands them to the runner, in order.

    It waits for the first message with a long poll, then takes whatever else is already there
    (up to the batch size) with a very short second fetch. A loop of short fetches for a whole
    batch would be simpler, but a message that arrives as such a fetch expires is delivered to a
    request nobody waits for any more and only comes back after ``ack_wait`` (seen as 30 s
    stalls after a few idle seconds, with FastStream's batch subscriber too).

    Stopping never abandons a message the server has handed over. A long poll is not cancelled
    (a pull request still pending on the server would take the next message into a subscription
    about to go, and a fetch cancelled just as its message arrived would drop it; either way the
    message waits out ``ack_wait``): it is short, so stopping waits for it to end, and for the
    batch in hand. Then the subscription is drained (the server stops delivering to it, and what
    it delivered before is read), and whatever was still on its way is handled too.
    """

    LONG_POLL_SECONDS = 1.0
    BIND_RETRY_SECONDS = 0.5  # the first wait after a failed bind; doubled up to 5 s

    def __init__(
        self, js: JetStreamContext, sub: Subscription[Any], runner: BatchRunner, settings: Any
    ) -> None:
        self._js = js
        self._sub = sub
        self._runner = runner
        self._batch_size: int = settings.batch_size
        self._gather_seconds: float = settings.fetch_timeout
        self._config = ConsumerConfig(
            durable_name=sub.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=settings.ack_wait_seconds,
            # Unlimited: an outage must never make the server give up on a message. Only
            # handler failures, counted by the runner, lead to a dead letter.
            max_deliver=-1,
            max_ack_pending=settings.batch_size * 8,
            filter_subject=f"{sub.prefix}.*",
        )
        self._psub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def bind(self) -> None:
        """Create (or update) the durable consumer and subscribe to it, for as long as NATS
        takes to answer: a JetStream API request that times out while the cluster elects a
        leader or is overloaded is an outage to wait out, not a reason for the process to
        end at start."""
        delay = self.BIND_RETRY_SECONDS
        while True:
            try:
                await self._bind()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning(
                    "binding %s failed (%s); retrying in %gs", self._sub.durable, _cause(exc), delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _bind(self) -> None:
        # Created or updated: a consumer made by an older version keeps its old limits else.
        await self._js.add_consumer(stream_for(self._sub.prefix), self._config)
        self._psub = await self._js.pull_subscribe(
            f"{self._sub.prefix}.*",
            durable=self._sub.durable,
            stream=stream_for(self._sub.prefix),
            config=self._config,
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pull {self._sub.durable}")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task:
            # The poll in progress ends by itself within LONG_POLL_SECONDS; a batch in hand is
            # finished and acknowledged.
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._psub is not None:
            try:
                leftovers = await self._drain()
                if leftovers:
                    await self._run_batch(leftovers)
            except Exception as exc:
                # The connection is gone: the server forgets the pull requests with it, and
                # whatever was delivered comes back after ack_wait.
                log.warning("stopping %s: %s", self._sub.durable, _cause(exc))

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                msgs = await self._psub.fetch(1, timeout=self.LONG_POLL_SECONDS)
            except (TimeoutError, NatsTimeoutError):
                # Nothing arrived within the long poll (nats-py raises either kind).
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fetch for %s failed (%s); retrying", self._sub.durable, _cause(exc))
                await self._pause(1)
                continue
            try:
                pause = await self._handle(msgs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Whatever went wrong (an ack lost in an outage, a fetch error), the messages
                # not acknowledged come back after ack_wait; the loop itself must go on.
                log.warning("batch for %s failed (%s); continuing", self._sub.durable, _cause(exc))
                pause = 0.5
            if pause:
                # The database or NATS is down: fetching more would only fail the same way.
                await self._pause(pause)

    async def _pause(self, seconds: float) -> None:
        # Cut short by stop(): nothing is in hand while pausing.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _handle(self, msgs: list[Msg]) -> float:
        if self._batch_size > 1:
            # nats-py raises asyncio's TimeoutError, not its own, when the gathering fetch
            # runs out of time before its second pull request: that must not end the loop.
            with contextlib.suppress(asyncio.TimeoutError, NatsTimeoutError):
                msgs += await self._psub.fetch(self._batch_size - 1, timeout=self._gather_seconds)
        return await self._run_batch(msgs)

    async def _run_batch(self, msgs: list[Msg]) -> float:
        return await self._runner.run(
            msgs,
            self._sub.event,
            self._sub.handler,
            self._sub.operation,
            self._sub.max_deliver,
        )

    async def _drain(self) -> list[Msg]:
        """End the subscription: the server delivers nothing more to it (and drops any pull
        request still pending there); the messages it delivered before are returned."""
        # nats-py keeps the pull subscription's inbox subscription in ``_sub``. Its own drain()
        # cannot be used: it waits for every queued message to be marked done, which fetch()
        # does not do for the messages it takes from the queue, so it can wait forever.
        inbox = self._psub._sub
        nc = self._js._nc
        await nc._send_unsubscribe(inbox._id)
        # The round trip: once it is back, the server has dropped the subscription and every
        # message it sent before is in the queue.
        await nc.flush(timeout=5)
        msgs: list[Msg] = []
        while self._psub.pending_msgs:
            msg = await inbox.next_msg(timeout=1)
            if not JetStreamContext.is_status_msg(msg):
                msgs.append(msg)
        await inbox.unsubscribe()
        return msgs
