"""The runtime every service is built on: broker, engine, outbox relay, batch runner, tracing.

A service's composition root creates one ``Service``, registers its subscriptions and query
responders, and returns ``service.app`` (a FastStream app) to run.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import signal
import time
import typing
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from faststream import FastStream
from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub
from faststream.specification import AsyncAPI
from nats.js import JetStreamContext
from pydantic import BaseModel, ValidationError
from sqlalchemy import MetaData, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.contracts.envelope import Actor, Event
from berth.contracts.issues import issues_from_validation_error
from berth.contracts.queries import ErrorReply, HealthQuery, HealthReply
from berth.contracts.roles import ADMIN, UI, inbox_prefix
from berth.contracts.rpc import rpc_for
from berth.contracts.subjects import deadletter, rpc_health, stream_for
from berth.shared import logs, migrations
from berth.shared.bus import build_broker, wait_for_streams
from berth.shared.consumer import (
    BatchRunner,
    Publishes,
    PullLoop,
    Subscription,
    UnitOfWork,
    unit_of_work,
)
from berth.shared.db import INBOX, OUTBOX, autocommit, create_engine
from berth.shared.errors import is_transient
from berth.shared.health import HealthServer
from berth.shared.heap import settle_heap
from berth.shared.identity import (
    Unauthenticated,
    Verifier,
    bearer_token,
    verifier_from_settings,
)
from berth.shared.leadership import LeaderElector
from berth.shared.migrations import upgrade
from berth.shared.outbox import OutboxRelay
from berth.shared.retention import prune_forever
from berth.shared.settings import Settings
from berth.shared.telemetry import nats_span_processor, setup_tracing

__all__ = ["Service", "Subscription", "configure_logging", "run"]

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
Q = TypeVar("Q", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)
Hook = Callable[[], Awaitable[None]]


class Service:
    def __init__(
        self,
        settings: Settings,
        metadata: MetaData,
        *,
        migrations_package: str | None = None,
        engine: AsyncEngine | None = None,
        role: str | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.service_name
        # The bus role this process acts as: its service's, also when several processes of one
        # service have names of their own (each cluster's agent is a scheduler-adapter).
        self.role = role or self.name
        self.schema = metadata.schema or self.name
        self.provider = setup_tracing(self.name, otlp_endpoint=settings.otlp_endpoint)
        self.tracer = self.provider.get_tracer(f"berth.{self.name}")
        self.broker: NatsBroker = build_broker(
            settings.nats_url,
            tracer_provider=self.provider,
            name=self.name,
            role=self.role,
            credentials=settings.nats_credentials,
        )
        self.engine = engine or create_engine(settings.database_url)
        # Reads outside a unit of work (queries, look-ups): the same pool, no BEGIN/ROLLBACK.
        self.reads = autocommit(self.engine)
        self.outbox_table: Table = metadata.tables[f"{self.schema}.{OUTBOX}"]
        self.inbox_table: Table = metadata.tables[f"{self.schema}.{INBOX}"]
        self._migrations_package = migrations_package
        self._js: JetStreamContext | None = None
        self._relay: OutboxRelay | None = None
        self._runner: BatchRunner | None = None
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        self._background: list[tuple[Callable[[], Awaitable[Any]], str]] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._pruning: asyncio.Task[None] | None = None
        self._start_cpu: list[tuple[str, float]] = []
        self._elector: LeaderElector | None = None
        # Queries answered by every replica, and those only the leading one answers.
        self._replies: list[tuple[str, Callable[..., Awaitable[Any]]]] = []
        self._leader_replies: list[tuple[str, Callable[..., Awaitable[Any]]]] = []
        self._leader_subscribers: list[Any] = []
        self.app = FastStream(
            self.broker,
            logger=logging.getLogger("berth.app"),
            specification=AsyncAPI(title=f"berth {self.name}", version="1.0.0"),
            on_startup=[self._startup],
            after_startup=[self._after_startup],
            on_shutdown=[self._shutdown],
        )
        # A broker that is never connected: it only describes the batch subscriptions, which
        # run on PullLoop, so that the AsyncAPI document lists everything the service does.
        self.spec_broker = NatsBroker(settings.nats_url, logger=None)
        self.spec_app = FastStream(
            self.spec_broker,
            specification=AsyncAPI(title=f"berth {self.name}", version="1.0.0"),
        )
        self._subscriptions: list[Subscription[Any]] = []
        self._publishes: list[type[Event]] = []
        self._responds: list[str] = []
        self._rpc_models: dict[str, tuple[type[BaseModel], type[BaseModel] | None]] = {}
        self._loops: list[PullLoop] = []
        self.verifier: Verifier = verifier_from_settings(settings)
        self.respond(rpc_health(self.name), HealthQuery, self._health)
        self._health_server = (
            HealthServer(settings.health_port, self._readiness) if settings.health_port else None
        )

    # -- wiring ---------------------------------------------------------------------------------

    def subscribe(self, sub: Subscription[E]) -> None:
        """Consume ``sub`` in batches once the service starts (see ``PullLoop`` for why not
        through FastStream); it is also described in the service's AsyncAPI document."""
        self._subscriptions.append(sub)
        prefix = sub.subject_prefix or sub.event.subject_prefix()

        async def consume(event: Any) -> None:  # documentation only; never called
            raise NotImplementedError

        # A lenient decoder (RawEvent) is documented as the event type it stands in for.
        documented = next(
            (c for c in Event.registry.values() if c.subject_prefix() == prefix), sub.event
        )
        consume.__annotations__ = {"event": documented, "return": None}
        consume.__name__ = sub.durable.replace("-", "_")
        self.spec_broker.subscriber(
            f"{prefix}.*",
            stream=JStream(stream_for(prefix), declare=False),
            durable=sub.durable,
            pull_sub=PullSub(batch_size=self.settings.batch_size, batch=True),
            title=sub.durable,
            description=f"{sub.operation}: {(sub.event.__doc__ or '').strip()}",
        )(consume)

    def publishes(self, *events: type[Event]) -> None:
        """Declare the events this service emits (through its outbox), for its AsyncAPI."""
        self._publishes.extend(events)
        for event in events:
            self.spec_broker.publisher(
                f"{event.subject_prefix()}.{{subject}}",
                title=event.subject_prefix(),
                schema=event,
                description=(event.__doc__ or "").strip(),
            )

    def respond(
        self,
        subject: str,
        request: type[Q],
        handler: Callable[[Q], Awaitable[R]],
        *,
        leader_only: bool = False,
    ) -> None:
        """A request-reply query on core NATS, load-balanced over the service's replicas
        (``leader_only``: answered only by the replica that leads, see ``lead_with``).

        Every request gets an answer: one that cannot be decoded gets an ``ErrorReply`` naming
        each problem (code ``bad-request``), one whose handler fails gets an ``ErrorReply``
        with code ``internal`` (``unavailable`` during an outage); either is logged once."""

        declared = rpc_for(subject)
        # Requests from UIs prove who sends them with a bearer token. A service calling a query
        # it may call needs none, nor does an operator (whose credential may do anything on
        # the bus anyway): their replies come under their own inbox prefix, which NATS lets
        # only them read, so a UI borrowing that prefix never sees the answer.
        authenticated = declared is not None and UI in declared.callers and not declared.anonymous
        trusted = [role for role in (declared.callers if declared else ()) if role != UI]
        services = tuple(f"{inbox_prefix(role)}." for role in [*trusted, ADMIN])
        takes_actor = "actor" in request.model_fields

        # ``body`` is what FastStream made of the bytes (anything); ``msg.body`` is decoded here.
        async def reply(body: Any, msg: NatsMessage) -> Any:  # noqa: ARG001
            actor: Actor | None = None
            if authenticated:
                token = bearer_token(msg.headers)
                if token is not None or not (msg.reply_to or "").startswith(services):
                    try:
                        actor = await self.verifier.verify(token)
                    except Unauthenticated as exc:
                        log.warning("%s: refused: %s", subject, exc)
                        return ErrorReply.of("unauthenticated", f"{subject}: {exc}")
            try:
                if actor is not None and takes_actor:
                    # The verified actor, whatever the request claims.
                    raw = json.loads(msg.body or b"{}")
                    if not isinstance(raw, dict):
                        raw = {}
                    raw["actor"] = actor.model_dump(mode="json")
                    query = request.model_validate(raw)
                else:
                    query = request.model_validate_json(msg.body or b"{}")
            except ValidationError as exc:
                issues = issues_from_validation_error(exc)
                log.warning(
                    "%s: bad request: %s",
                    subject,
                    "; ".join(f"{i.field}: {i.details}" for i in issues),
                )
                return ErrorReply.of("bad-request", f"bad request on {subject}", issues)
            try:
                return await handler(query)
            except Exception as exc:
                code = "unavailable" if is_transient(exc) else "internal"
                log.error("%s: %s failed: %s", self.name, subject, exc, exc_info=exc)
                return ErrorReply.of(code, f"{subject} failed: {type(exc).__name__}: {exc}")

        reply.__name__ = subject.replace(".", "_")
        self._responds.append(subject)
        self._rpc_models[subject] = (request, _reply_model(handler))
        (self._leader_replies if leader_only else self._replies).append((subject, reply))

        # The AsyncAPI document describes the request model.
        async def described(body: Any) -> Any:  # documentation only; never called
            raise NotImplementedError

        described.__annotations__ = {"body": request, "return": Any}
        described.__name__ = reply.__name__
        self.spec_broker.subscriber(subject, queue=self.name, title=subject)(described)

    @property
    def subscriptions(self) -> tuple[Subscription[Any], ...]:
        return tuple(self._subscriptions)

    @property
    def published(self) -> tuple[type[Event], ...]:
        return tuple(self._publishes)

    @property
    def rpc_models(self) -> dict[str, tuple[type[BaseModel], type[BaseModel] | None]]:
        """Request and reply model of each subject this service answers (the reply model as
        its handler declares it; None when it declares none). Any of them may also answer an
        ``ErrorReply``."""
        return dict(self._rpc_models)

    @property
    def declared_publishes(self) -> Publishes:
        """What units of work of this service may emit (``UnitOfWork.emit`` refuses the rest)."""
        return Publishes.of(self.name, self._publishes)

    @property
    def responds_to(self) -> tuple[str, ...]:
        return tuple(self._responds)

    def streams(self) -> set[str]:
        """The streams this service consumes from, emits to, and dead-letters into."""
        prefixes = [sub.prefix for sub in self._subscriptions]
        prefixes += [event.subject_prefix() for event in self._publishes]
        return {stream_for(p) for p in prefixes} | {stream_for(deadletter(self.name))}

    def on_start(self, hook: Hook) -> None:
        """Run ``hook`` once connected, before any subscription starts consuming."""
        self._on_start.append(hook)

    def on_stop(self, hook: Hook) -> None:
        self._on_stop.append(hook)

    def background(self, factory: Callable[[], Awaitable[Any]], name: str) -> None:
        """A task that runs while the service runs (e.g. a watch loop)."""

        self._background.append((factory, name))

    def lead_with(self, elector: LeaderElector) -> None:
        """Of the replicas sharing ``elector``'s lease, only the holder works: its start hooks,
        subscriptions, background tasks and leader-only queries wait for the lease (what a
        replica does at start, it does on taking over). A holder that loses its lease stops
        consuming at once and ends the process, to start again as a standby; one that stops
        cleanly releases the lease.

        A standby answers no query, not even the health check: the service is up once a
        replica works (and has done what it does at start), not when a standby is."""
        self._elector = elector
        health = rpc_health(self.name)
        self._leader_replies += [r for r in self._replies if r[0] == health]
        self._replies = [r for r in self._replies if r[0] != health]

    @property
    def leading(self) -> bool:
        return self._elector is None or self._elector.leading

    # -- runtime --------------------------------------------------------------------------------

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A transaction outside any batch whose emitted events leave through the outbox."""
        return unit_of_work(self.engine, self.outbox_table, self.relay, self.declared_publishes)

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "service not started"
        return self._js

    @property
    def runner(self) -> BatchRunner:
        assert self._runner is not None, "service not started"
        return self._runner

    @property
    def relay(self) -> OutboxRelay:
        assert self._relay is not None, "service not started"
        return self._relay

    async def _health(self, _query: HealthQuery) -> HealthReply:
        t = self.outbox_table
        async with self.reads.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        func.count(), func.extract("epoch", func.now() - func.min(t.c.created_at))
                    )
                )
            ).one()
        pending, oldest = int(row[0] or 0), float(row[1]) if row[1] is not None else None
        dead, last_dead = await self._dead_letters()
        reasons = []
        if oldest is not None and oldest > self.settings.outbox_stuck_seconds:
            reasons.append(f"outbox stuck: oldest of {pending} rows waits for {oldest:.0f}s")
        # Once an operator has discarded or replayed every dead letter, none is left to look at.
        if last_dead is not None and dead != 0:
            age = (datetime.now(UTC) - last_dead).total_seconds()
            if age < self.settings.dead_letter_alert_seconds:
                count = "" if dead is None else f"{dead} "
                reasons.append(
                    f"{count}dead letters, the last {age:.0f}s ago (berth deadletter list)"
                )
        return HealthReply(
            service=self.name,
            status="degraded" if reasons else "ok",
            outboxPending=pending,
            outboxOldestSeconds=oldest,
            deadLetters=dead,
            lastDeadLetterAt=last_dead,
            problems=reasons,
        )

    async def _dead_letters(self) -> tuple[int | None, datetime | None]:
        """How many dead letters of this service the DEADLETTER stream holds (None when that
        cannot be told at once), and when this process last made one."""
        latest = [t for t in (self.relay.last_dead_letter_at, self.runner.last_dead_letter_at) if t]
        last = max(latest) if latest else None
        try:
            # Health answers at once: a slow or refused stream query must not make a running
            # service look down.
            info = await asyncio.wait_for(
                self.js.stream_info("DEADLETTER", subjects_filter=f"{deadletter(self.name)}.>"),
                timeout=0.5,
            )
        except Exception as exc:
            log.warning("health: dead letters unknown (%s)", type(exc).__name__)
            return None, last
        return sum((info.state.subjects or {}).values()), last

    async def _readiness(self) -> tuple[bool, dict[str, Any]]:
        """This process's answer to a readiness probe: the health rpc's check, run here."""
        if self._runner is None:
            return False, {"status": "starting"}
        if not self.broker.connection.is_connected:
            return False, {"status": "unready", "reason": "not connected to NATS"}
        return True, (await self._health(HealthQuery())).model_dump(mode="json")

    async def _startup(self) -> None:
        # CPU seconds of the process (robust to a busy machine, unlike wall time) at each step
        # of its start, logged with "started": what a restart costs, and where.
        self._start_cpu = [("interpreter, imports, settings", time.process_time())]
        # Served from the start, so that liveness holds while the service waits for its schema
        # or its streams.
        if self._health_server is not None:
            await self._health_server.start()
        if self._migrations_package:
            if self.settings.migrate_on_start:
                await upgrade(self._migrations_package, self.settings.database_url)
            else:
                await migrations.wait_for_head(
                    self._migrations_package, self.engine, self.schema, who=self.name
                )
        self._start_cpu.append(("schema", time.process_time()))
        if not self.settings.nats_credentials:
            log.warning(
                "%s connects to NATS without a credential (BERTH_NATS_CREDENTIALS is unset): the "
                "connection is unauthenticated, which only a development server accepts",
                self.name,
            )
        for subject, reply in self._replies:
            self.broker.subscriber(subject, queue=self.name, title=subject)(reply)
        await self.broker.connect()
        nc = self.broker.connection
        self._js = nc.jetstream(publish_async_max_pending=8000)
        # Streams are created by an operator (the admin role; `berth up` does it), never by a
        # service: a service's credential does not allow it.
        await wait_for_streams(self._js, self.streams(), who=self.name)
        self._start_cpu.append(("NATS and streams", time.process_time()))
        if self.settings.local_traces:
            self.provider.add_span_processor(nats_span_processor(nc, asyncio.get_running_loop()))
        self._relay = OutboxRelay(
            self.engine,
            self.outbox_table,
            self._js,
            poll_seconds=self.settings.outbox_poll_seconds,
            service=self.name,
        )
        self._runner = BatchRunner(
            service=self.name,
            engine=self.engine,
            outbox_table=self.outbox_table,
            inbox_table=self.inbox_table,
            relay=self._relay,
            js=self._js,
            tracer=self.tracer,
            max_deliver=self.settings.max_deliver,
            nak_delay=self.settings.nak_delay_seconds,
            publishes=self.declared_publishes,
            verifier=self.verifier,
        )

        if self._elector is None:
            for hook in self._on_start:
                await hook()

    async def _after_startup(self) -> None:
        # The outbox is drained by every replica: a standby's holds what it wrote as leader.
        self.relay.start()
        # Any replica may prune the inbox: deleting rows twice deletes nothing more.
        self._pruning = asyncio.create_task(
            prune_forever(
                self.engine,
                self.inbox_table,
                retention=timedelta(days=self.settings.inbox_retention_days),
                interval=self.settings.inbox_prune_interval_seconds,
                who=self.name,
            ),
            name="inbox-prune",
        )
        if self._elector is None:
            await self._lead()
        else:
            self._tasks.append(asyncio.create_task(self._campaign(), name="leader-election"))
        self._start_cpu.append(("start hooks, subscriptions", time.process_time()))
        steps = [
            f"{after - before:.2f}s {label}"
            for (label, after), (_, before) in zip(
                self._start_cpu, [("", 0.0), *self._start_cpu[:-1]], strict=True
            )
        ]
        log.info("%s started (%.2fs of CPU: %s)", self.name, time.process_time(), ", ".join(steps))

    async def _campaign(self) -> None:
        elector = self._elector
        assert elector is not None
        log.info("%s: standing by for the lease as %s", self.name, elector.identity)
        await elector.acquire()
        # Renewed from now on, while the start hooks run (a resync may take long).
        holding = asyncio.create_task(elector.hold(), name="lease-renewal")
        try:
            started = time.monotonic()
            for hook in self._on_start:
                await hook()
            await self._lead()
            log.info(
                "%s: leading as %s (took over in %.2fs)",
                self.name,
                elector.identity,
                time.monotonic() - started,
            )
            await asyncio.shield(holding)
        except asyncio.CancelledError:
            holding.cancel()
            raise
        except Exception:
            log.exception("%s: taking over failed", self.name)
            holding.cancel()
        # Lost, or never fully taken: stop working now, and let the process end (a supervisor
        # starts it again as a standby).
        await asyncio.gather(*(loop.stop() for loop in self._loops))
        self._loops.clear()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        os.kill(os.getpid(), signal.SIGTERM)

    async def _lead(self) -> None:
        for subject, reply in self._leader_replies:
            responder = self.broker.subscriber(subject, queue=self.name, persistent=False)
            responder(reply)
            await responder.start()
            self._leader_subscribers.append(responder)
        for sub in self._subscriptions:
            loop = PullLoop(self.js, sub, self.runner, self.settings)
            await loop.bind()
            self._loops.append(loop)
            loop.start()
        for factory, name in self._background:
            self._tasks.append(asyncio.create_task(_logged(factory, name), name=name))

    async def _shutdown(self) -> None:
        # Let every batch in hand finish and be acknowledged before anything closes.
        await asyncio.gather(*(loop.stop() for loop in self._loops))
        for sub in self._leader_subscribers:
            await sub.stop()
        if self._pruning is not None:
            self._pruning.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._elector is not None:
            # Only now that nothing consumes or watches any more may another replica take over.
            await self._elector.release()
        for hook in self._on_stop:
            await hook()
        if self._relay:
            await self._relay.stop()
        self.provider.force_flush(2000)
        await asyncio.sleep(0.05)  # let the span exporter's last publishes reach the socket
        self.provider.shutdown()
        await self.engine.dispose()
        if self._health_server is not None:
            await self._health_server.stop()


async def _logged(factory: Callable[[], Awaitable[Any]], name: str) -> None:
    try:
        await factory()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background task %s crashed", name)
        raise


def configure_logging(settings: Settings) -> None:
    """Structured logs: one JSON object per line (see ``logs``)."""
    logs.configure(settings.service_name, settings.log_level)


def run(app: FastStream, settings: Settings) -> None:
    """Entry point of a service process: runs until SIGINT/SIGTERM, then drains."""
    configure_logging(settings)
    settle_heap()
    asyncio.run(app.run())


def _reply_model(handler: Callable[..., Any]) -> type[BaseModel] | None:
    """The model a query handler returns, from its annotations (through ``functools.partial``)."""
    target: Any = handler
    while isinstance(target, functools.partial):
        target = target.func
    try:
        returned = typing.get_type_hints(target).get("return")
    except (NameError, TypeError):
        return None
    return returned if isinstance(returned, type) and issubclass(returned, BaseModel) else None
