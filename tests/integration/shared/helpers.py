"""A tiny berth service for testing the shared runtime against real NATS and PostgreSQL.

The probe service consumes ``WorkloadActionRequestedV1`` events, writes one row per event into a
table of its own and emits a ``WorkloadActionDeniedV1`` (no berth service consumes those) for
each through the outbox. Every probe listens on a subject prefix of its own: a new durable
consumer starts from the beginning of the stream, so on the real subject it would replay what
earlier tests published (and real services would see the probes' traffic).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo, PubAck
from nats.js.errors import NotFoundError
from sqlalchemy import BIGINT, Column, Integer, Table, Text, func, select
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.contracts.envelope import Actor
from berth.contracts.events import (
    WorkloadActionData,
    WorkloadActionDeniedData,
    WorkloadActionDeniedV1,
    WorkloadActionRequestedV1,
)
from berth.contracts.subjects import stream_for
from berth.shared.bus import connect, encode, ensure_streams, event_headers
from berth.shared.consumer import Incoming, Subscription, UnitOfWork
from berth.shared.db import ensure_schema, service_metadata
from berth.shared.identity import bearer_headers
from berth.shared.service import Service
from berth.shared.settings import Settings
from tests.identity import token_for

SOURCE = "/berth/probe"
OPERATION = "probe"
# Emitted events land here, one subject per subject id.
EMITTED_PREFIX = WorkloadActionDeniedV1.subject_prefix()


def unique(label: str) -> str:
    """A name no other test uses; also a valid NATS subject token and durable name."""
    return f"{label}-{uuid.uuid4().hex[:12]}"


async def eventually(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy, and return that;
    fail with its last value once ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)


def denied(subject_id: str) -> WorkloadActionDeniedV1:
    """An event for the outbox (no berth service consumes it), one subject per subject id."""
    return WorkloadActionDeniedV1(
        source="/berth/tests",
        subject=subject_id,
        actor=Actor.system("probe"),
        data=WorkloadActionDeniedData(
            action="delete", name=subject_id, project="probe", reason="-"
        ),
    )


def request(subject_id: str) -> WorkloadActionRequestedV1:
    return WorkloadActionRequestedV1(
        source="/berth/tests",
        subject=subject_id,
        actor=Actor(email="tester@example.com"),
        data=WorkloadActionData(action="suspend", name=subject_id, project="probe"),
    )


class PoisonError(RuntimeError):
    """What the probe's handler raises when told to fail."""


@dataclass
class Probe:
    """The probe service, its table, and what its handler saw."""

    service: Service
    table: Table
    prefix: str
    durable: str
    # Sizes of the batches the handler was called with, in order.
    batches: list[int] = field(default_factory=list)
    # subject id -> the delivery count of each handler call that included it
    deliveries: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    # The handler raises (after writing) when this says so for one of the batch's items.
    fail: Callable[[Incoming[WorkloadActionRequestedV1]], bool] = lambda _item: False
    # Awaited for each item before the handler writes anything.
    before: Callable[[Incoming[WorkloadActionRequestedV1]], Awaitable[None]] | None = None

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def engine(self) -> AsyncEngine:
        return self.service.engine

    def subject(self, subject_id: str) -> str:
        return f"{self.prefix}.{subject_id}"

    async def handle(
        self, items: list[Incoming[WorkloadActionRequestedV1]], unit: UnitOfWork
    ) -> None:
        self.batches.append(len(items))
        for item in items:
            self.deliveries[item.event.subject].append(item.msg.metadata.num_delivered)
            if self.before:
                await self.before(item)
        await unit.conn.execute(
            self.table.insert(),
            [
                {
                    "event_id": item.event.id,
                    "subject_id": item.event.subject,
                    "delivery": item.msg.metadata.num_delivered,
                }
                for item in items
            ],
        )
        for item in items:
            data = item.event.data
            denied = WorkloadActionDeniedV1(
                source=SOURCE,
                **item.event.chain(),
                data=WorkloadActionDeniedData(**data.model_dump(), reason="probe"),
            )
            unit.emit(denied, cause=item)
        for item in items:
            if self.fail(item):
                raise PoisonError(f"poison {item.event.subject}")

    async def rows(self) -> list[tuple[uuid.UUID, str]]:
        """(event id, subject id) of every row the handler committed."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(self.table.c.event_id, self.table.c.subject_id).order_by(self.table.c.seq)
            )
            return [(r.event_id, r.subject_id) for r in result]

    async def count(self, table: Table) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(table)) or 0)

    async def outbox_drained(self) -> bool:
        return await self.count(self.service.outbox_table) == 0

    async def settled(self) -> bool:
        """Nothing left for the consumer: every message delivered and acknowledged."""
        info = await self.consumer()
        return bool(info.num_pending == 0 and info.num_ack_pending == 0)

    async def outbox_rows(self) -> list[Any]:
        t = self.service.outbox_table
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(t).order_by(t.c.id))).all())

    async def consumer(self) -> ConsumerInfo:
        info: ConsumerInfo = await self.service.js.consumer_info(
            stream_for(self.prefix), self.durable
        )
        return info


def register_subject(event_type: str) -> None:
    """Make ``<event type>.v1.*`` a known subject: streams hold only the subjects of known
    events, so a probe's own subject needs an event type of its own (never published)."""

    class _Registered(WorkloadActionRequestedV1):
        TYPE: ClassVar[str] = event_type
        VERSION: ClassVar[int] = 1


def build_probe(
    nats_url: str,
    database_url: str,
    *,
    subscription_max_deliver: int | None = None,
    **settings: Any,
) -> Probe:
    name = unique("probe")
    schema = "t_" + name.replace("-", "_")
    metadata = service_metadata(schema)
    table = Table(
        "handled",
        metadata,
        # No unique key on the event: a second handling shows up as a second row.
        Column("seq", BIGINT, primary_key=True, autoincrement=True),
        Column("event_id", UUID(as_uuid=True), nullable=False),
        Column("subject_id", Text, nullable=False),
        Column("delivery", Integer, nullable=False),
    )
    values: dict[str, Any] = {
        "batch_size": 50,
        "fetch_timeout": 0.05,
        "ack_wait_seconds": 2,
        "nak_delay_seconds": 0.1,
        "max_deliver": 3,
        "outbox_poll_seconds": 0.2,
    }
    values.update(settings)
    service = Service(
        Settings(service_name=name, nats_url=nats_url, database_url=database_url, **values),
        metadata,
        migrations_package=None,
    )
    register_subject(f"berth.workload.{name}")
    probe = Probe(service, table, prefix=f"workload.{name}.v1", durable=name)
    # A unit of work emits only what its service declares.
    service.publishes(WorkloadActionDeniedV1)
    service.subscribe(
        Subscription(
            WorkloadActionRequestedV1,
            durable=name,
            handler=probe.handle,
            operation=OPERATION,
            max_deliver=subscription_max_deliver,
            subject_prefix=probe.prefix,
        )
    )
    return probe


@contextlib.asynccontextmanager
async def running(probe: Probe) -> AsyncIterator[Probe]:
    # Services only wait for the streams: declare them, with the probe's subject, as an
    # operator would.
    setup = await connect(probe.service.settings.nats_url, name="probe-setup")
    try:
        await ensure_streams(setup.jetstream())
    finally:
        await setup.close()
    await ensure_schema(probe.engine, probe.service.schema)
    async with probe.engine.begin() as conn:
        await conn.run_sync(probe.table.metadata.create_all)
    await probe.service.app.start()
    try:
        yield probe
    finally:
        await probe.service.app.stop()


_declared: set[str] = set()


def request_headers(
    event: WorkloadActionRequestedV1, headers: dict[str, str] | None = None
) -> dict[str, str]:
    """The headers of a UI's request: the probe consumes one, so it carries a token proving
    its actor."""
    return event_headers(event, headers or {}) | bearer_headers(token_for(event.actor))


async def publish(
    js: JetStreamContext,
    subject: str,
    event: WorkloadActionRequestedV1,
    *,
    msg_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> PubAck:
    prefix = subject.rsplit(".", 1)[0]
    if prefix not in _declared:
        # A probe's subject joins the streams when they are declared; a test may publish
        # before the probe runs.
        await ensure_streams(js)
        _declared.add(prefix)
    hdrs = request_headers(event, headers)
    if msg_id is not None:
        hdrs["Nats-Msg-Id"] = msg_id
    return await js.publish(subject, encode(event), headers=hdrs)


async def stored(js: JetStreamContext, subject: str) -> list[Any]:
    """Every message the stream holds under ``subject`` (wildcards allowed), oldest first.

    Read message by message from the stream itself (next message on the subject after a
    sequence): no consumer, so nothing depends on a consumer's view of the stream's tail, which
    was seen one message short right after a publish."""
    stream = stream_for(subject)
    msgs: list[Any] = []
    seq = 0
    while True:
        try:
            msg = await js.get_msg(stream, seq=seq + 1, subject=subject, next=True)
        except NotFoundError:
            return msgs
        msgs.append(msg)
        seq = msg.seq


def deadletter_subject(probe: Probe, subject: str) -> str:
    return f"deadletter.{probe.name}.v1.{subject.replace('.', '_')}"


def emitted_subject(subject_id: str) -> str:
    return f"{EMITTED_PREFIX}.{subject_id}"


async def emitted(js: JetStreamContext, subject_ids: set[str]) -> list[WorkloadActionDeniedV1]:
    """The probe's emitted events for these subject ids, as the stream holds them."""
    msgs = await stored(js, f"{EMITTED_PREFIX}.*")
    return [
        WorkloadActionDeniedV1.model_validate_json(m.data)
        for m in msgs
        if m.subject.rsplit(".", 1)[1] in subject_ids
    ]


@contextlib.asynccontextmanager
async def terminations(nc: Any, probe: Probe) -> AsyncIterator[list[dict[str, Any]]]:
    """The server's advisories for messages of the probe's consumer that were terminated."""
    received: list[dict[str, Any]] = []

    async def collect(msg: Msg) -> None:
        received.append(json.loads(msg.data))

    stream = stream_for(probe.prefix)
    sub = await nc.subscribe(
        f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{stream}.{probe.durable}", cb=collect
    )
    try:
        yield received
    finally:
        await sub.unsubscribe()


class TcpProxy:
    """A TCP forwarder to PostgreSQL that a test can cut and restore: an outage of the database
    as the service sees it (connections reset, new ones refused), without touching the server
    other tests use."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        socket_dir = url.query.get("host")
        self._unix: str | None = None
        if socket_dir:
            self._unix = f"{socket_dir}/.s.PGSQL.{url.port or 5432}"
        self._target = (url.host or "127.0.0.1", url.port or 5432)
        self._url = url
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        proxied = self._url.set(host="127.0.0.1", port=self.port, query={})
        return proxied.render_as_string(hide_password=False)

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._unix:
                up_reader, up_writer = await asyncio.open_unix_connection(self._unix)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
