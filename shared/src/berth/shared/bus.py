"""The event bus: broker factory, stream declarations, event encoding and direct publishing."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import nats
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError
from pydantic import BaseModel, ValidationError

from berth.contracts.envelope import Event
from berth.contracts.queries import ErrorReply
from berth.contracts.registry import ALL_EVENTS, known_subjects
from berth.contracts.roles import UI, inbox_prefix
from berth.contracts.subjects import STREAMS
from berth.shared.errors import PermanentError, TransientError
from berth.shared.identity import bearer_headers
from berth.shared.telemetry import inject

if TYPE_CHECKING:
    # Imported where a broker is built: clients that only publish and ask (the CLI) skip them.
    from faststream.nats import NatsBroker
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)

# Long enough to cover a publisher that crashed after publishing but before recording it: a
# retry within this window is dropped by the server (Nats-Msg-Id = event id).
DUPLICATE_WINDOW_SECONDS = 10 * 60
DAY = 24 * 3600


@dataclass(frozen=True)
class StreamRetention:
    """How long and how much the streams keep (``berth nats-streams`` options). Events are kept
    by age only: a size limit would drop events a stopped consumer has not read yet. Traces are
    a debugging aid: the newest are kept within a bounded size as well."""

    max_age_days: float = 30.0
    max_bytes: int = -1  # per event stream; -1: no size limit
    telemetry_max_age_days: float = 7.0
    telemetry_max_bytes: int = 1 << 30


def stream_configs(
    replicas: int = 1, retention: StreamRetention | None = None
) -> list[StreamConfig]:
    """Every stream berth uses, declared in this one place; ``replicas``: copies of each on a
    NATS cluster (3 on a three-node cluster: losing one node loses nothing and stops nothing)."""
    keep = retention or StreamRetention()
    configs = []
    for name in STREAMS:
        telemetry = name == "TELEMETRY"
        days = keep.telemetry_max_age_days if telemetry else keep.max_age_days
        configs.append(
            StreamConfig(
                name=name,
                subjects=known_subjects(name),
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                duplicate_window=DUPLICATE_WINDOW_SECONDS,
                max_age=days * DAY,
                max_bytes=keep.telemetry_max_bytes if telemetry else keep.max_bytes,
                discard=DiscardPolicy.OLD,
                num_replicas=replicas,
            )
        )
    return configs


async def ensure_streams(
    js: JetStreamContext, *, replicas: int = 1, retention: StreamRetention | None = None
) -> None:
    """Create or update the streams (with the ``admin`` credential when NATS has permissions;
    ``berth up`` does it before starting the services)."""
    for config in stream_configs(replicas, retention):
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)


async def wait_for_streams(
    js: JetStreamContext, names: Iterable[str], *, who: str, interval: float = 2.0
) -> None:
    """Return once every stream in ``names`` exists; services never create streams themselves
    (only the ``admin`` role may), so until then they wait, saying what for."""
    pending = sorted(set(names))
    while True:
        missing = []
        for name in pending:
            try:
                await js.stream_info(name)
            except NotFoundError:
                missing.append(name)
        if not missing:
            return
        log.warning(
            "%s: waiting for the JetStream streams %s to exist; they are created by `berth up` "
            "or by an operator with the admin credential (see the README, Authentication)",
            who,
            ", ".join(missing),
        )
        pending = missing
        await asyncio.sleep(interval)


def server_urls(nats_url: str) -> list[str]:
    """The servers of ``nats_url``: one URL, or several separated by commas (the nodes of a
    NATS cluster; a client fails over between them, and learns the others from the one it
    reaches)."""
    return [url.strip() for url in nats_url.split(",") if url.strip()]


def auth_options(credentials: str | None, role: str) -> dict[str, Any]:
    """nats-py connect options for a role's credential (an nkey seed file): the key, and the
    role's own reply-subject prefix, the only one its permissions let it read. The prefix is
    used without a credential too: a service answering a query tells a service's own call
    (which needs no bearer token) by it."""
    options: dict[str, Any] = {"inbox_prefix": inbox_prefix(role)}
    if credentials:
        options["nkeys_seed"] = credentials
    return options


def build_broker(
    nats_url: str,
    *,
    tracer_provider: TracerProvider | None = None,
    name: str = "berth",
    role: str | None = None,
    credentials: str | None = None,
) -> NatsBroker:
    from faststream.nats import NatsBroker
    from faststream.nats.opentelemetry import NatsTelemetryMiddleware

    middlewares = (
        (NatsTelemetryMiddleware(tracer_provider=tracer_provider),) if tracer_provider else ()
    )
    # Per-message access logs cost ~20 % throughput; berth logs what matters itself.
    return NatsBroker(
        server_urls(nats_url),
        middlewares=middlewares,
        logger=None,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        **auth_options(credentials, role or name),
    )


def encode(event: Event) -> bytes:
    return event.model_dump_json().encode()


def decode(data: bytes) -> Event | None:
    """An event as its own class (SubmissionRejectedV1, WorkloadPhaseChangedV1, ...); None for
    what is not an event of the contracts."""
    try:
        raw = json.loads(data)
        cls = Event.registry.get((raw.get("type"), raw.get("version")))
        return cls.model_validate(raw) if cls is not None else None
    except (ValueError, AttributeError, ValidationError):
        return None


UI_FOLLOWED: tuple[type[Event], ...] = tuple(
    event
    for event in ALL_EVENTS
    if any(UI in c.roles and c.durable is None for c in event.CONSUMERS)
)
"""The event types a UI follows on core NATS (declared in the contracts: all ``ui`` may read)."""


@asynccontextmanager
async def follow(nc: Client, subject_id: str = "*") -> AsyncIterator[asyncio.Queue[Event]]:
    """Every event UIs follow about ``subject_id`` (every workload with "*") from now on,
    decoded, as the CLI and the api gateway watch them. Subscribed on core NATS before it
    yields, so an answer to what is published next cannot be missed."""
    queue: asyncio.Queue[Event] = asyncio.Queue()

    async def on_msg(msg: Any) -> None:
        event = decode(msg.data)
        if event is not None:
            queue.put_nowait(event)

    subs = [
        await nc.subscribe(f"{event.subject_prefix()}.{subject_id}", cb=on_msg)
        for event in UI_FOLLOWED
    ]
    await nc.flush()
    try:
        yield queue
    finally:
        for sub in subs:
            await sub.unsubscribe()


def event_headers(event: Event, trace_headers: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"Nats-Msg-Id": str(event.id)}
    headers.update(trace_headers if trace_headers is not None else inject())
    return headers


async def publish(
    js: JetStreamContext,
    event: Event,
    *,
    subject: str | None = None,
    token: str | None = None,
    **kwargs: Any,
) -> None:
    """Publish one event now and wait for its ack (for clients; services use the outbox).

    ``subject`` overrides the event's own, for envelopes whose class is a lenient container;
    ``token`` is the sender's bearer token (what a request from a UI must carry)."""
    headers = event_headers(event) | bearer_headers(token)
    await js.publish(subject or event.subject_name, encode(event), headers=headers, **kwargs)


async def connect(
    nats_url: str,
    *,
    name: str = "berth",
    credentials: str | None = None,
    role: str | None = None,
    **kwargs: Any,
) -> Client:
    """A plain nats-py connection (CLI, tests, embedded helpers); with ``credentials`` (the nkey
    seed file of ``role``) it authenticates as that role."""
    options: dict[str, Any] = {
        "name": name,
        "connect_timeout": 5,
        "max_reconnect_attempts": 3,
        "reconnect_time_wait": 1,
    }
    options.update(auth_options(credentials, role or name))
    options.update(kwargs)
    if options["max_reconnect_attempts"] == 0:
        # nats-py reads 0 as "unlimited" (even for the first connection): a caller asking for
        # no reconnection would wait forever for a server that is not there.
        options["max_reconnect_attempts"] = 1
    options.setdefault("error_cb", _quiet_error)
    return await nats.connect(server_urls(nats_url), **options)


async def _quiet_error(exc: Exception) -> None:
    # nats-py's default logs a traceback for every failed attempt; the caller reports the
    # failure that matters once.
    log.debug("nats: %s", exc)


Q = TypeVar("Q", bound=BaseModel)


async def ask(
    nc: Client,
    subject: str,
    query: BaseModel,
    reply: type[Q],
    *,
    timeout: float,
    token: str | None = None,
) -> Q:
    """A request-reply query carrying the current trace context (and ``token``, the sender's
    bearer token, when given); unavailability is transient."""
    try:
        msg = await nc.request(
            subject,
            query.model_dump_json().encode(),
            timeout=timeout,
            headers=inject() | bearer_headers(token),
        )
    except NoRespondersError:
        raise TransientError(f"no service answers {subject}") from None
    except NatsTimeoutError:
        raise TransientError(f"no answer on {subject} within {timeout:g}s") from None
    return decode_reply(subject, msg.data, reply)


def decode_reply(subject: str, data: bytes, reply: type[Q]) -> Q:
    """The reply, or the ``ErrorReply`` the responder sent instead, raised as an error."""
    try:
        return reply.model_validate_json(data)
    except ValidationError:
        try:
            error = ErrorReply.model_validate_json(data).error
        except ValidationError:
            raise PermanentError(f"{subject} answered with something unreadable") from None
        if error.code == "unavailable":
            raise TransientError(f"{subject}: {error.message}") from None
        details = "; ".join(f"{i.field}: {i.details}" for i in error.issues)
        message = f"{subject}: {error.message}" + (f" ({details})" if details else "")
        raise PermanentError(message) from None
