"""The gateway's side of the bus: what it publishes and asks, always as the ``ui`` role and on
behalf of the HTTP caller, whose ``Authorization`` header travels with every request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import BaseModel, ValidationError

from berth.contracts.envelope import Event
from berth.contracts.events import Issue
from berth.contracts.queries import ErrorReply
from berth.contracts.registry import ALL_EVENTS
from berth.contracts.roles import UI
from berth.shared.bus import event_headers
from berth.shared.telemetry import inject, read_trace

Q = TypeVar("Q", bound=BaseModel)

AUTHORIZATION = "Authorization"


class Unavailable(Exception):
    """No service answered: NATS or the service is down."""


class Refused(Exception):
    """A service answered the request with an error reply (bad request, internal)."""

    def __init__(self, code: str, message: str, issues: list[Issue]) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.issues = issues


class Bus(Protocol):
    """What the HTTP routes need of the bus; tests give a fake."""

    async def ask(
        self,
        subject: str,
        query: BaseModel,
        reply: type[Q],
        authorization: str,
        *,
        timeout: float | None = None,
    ) -> Q:
        """``authorization`` is empty only for the queries anyone may ask (a token exchange);
        ``timeout`` shortens the wait for answers a page can do without (a cluster's)."""

    async def publish(self, event: Event, subject: str, authorization: str) -> None: ...

    def watch(self, subject_id: str) -> Any:
        """An async context manager yielding an ``asyncio.Queue`` of the events UIs follow
        about ``subject_id`` ("*": every workload), subscribed before it yields."""

    async def spans(self, trace_id: str) -> list[dict[str, Any]]: ...


def decode(data: bytes) -> Event | None:
    try:
        raw = json.loads(data)
        cls = Event.registry.get((raw.get("type"), raw.get("version")))
        return cls.model_validate(raw) if cls is not None else None
    except (ValueError, AttributeError, ValidationError):
        return None


FOLLOWED: tuple[type[Event], ...] = tuple(
    event
    for event in ALL_EVENTS
    if any(UI in c.roles and c.durable is None for c in event.CONSUMERS)
)
"""The event types a UI follows on core NATS (declared in the contracts: all ``ui`` may read)."""


class NatsBus:
    def __init__(self, nc: Client, timeout: float = 30.0) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.timeout = timeout

    async def ask(
        self,
        subject: str,
        query: BaseModel,
        reply: type[Q],
        authorization: str,
        *,
        timeout: float | None = None,
    ) -> Q:
        wait = self.timeout if timeout is None else timeout
        headers = {**inject(), **({AUTHORIZATION: authorization} if authorization else {})}
        try:
            msg = await self.nc.request(
                subject, query.model_dump_json().encode(), timeout=wait, headers=headers
            )
        except NoRespondersError:
            raise Unavailable(f"no service answers {subject}") from None
        except NatsTimeoutError:
            raise Unavailable(f"no answer on {subject} within {wait:g}s") from None
        try:
            return reply.model_validate_json(msg.data)
        except ValidationError:
            pass
        try:
            error = ErrorReply.model_validate_json(msg.data).error
        except ValidationError:
            raise Refused("internal", f"{subject} answered with something unreadable", []) from None
        if error.code == "unavailable":
            raise Unavailable(error.message)
        raise Refused(error.code, error.message, list(error.issues))

    async def publish(self, event: Event, subject: str, authorization: str) -> None:
        headers = {**event_headers(event), AUTHORIZATION: authorization}
        await self.js.publish(
            subject, event.model_dump_json().encode(), headers=headers, timeout=10
        )

    @asynccontextmanager
    async def watch(self, subject_id: str) -> AsyncIterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue()

        async def on_msg(msg: Any) -> None:
            event = decode(msg.data)
            if event is not None:
                queue.put_nowait(event)

        subs = [
            await self.nc.subscribe(f"{event.subject_prefix()}.{subject_id}", cb=on_msg)
            for event in FOLLOWED
        ]
        await self.nc.flush()
        try:
            yield queue
        finally:
            for sub in subs:
                await sub.unsubscribe()

    async def spans(self, trace_id: str) -> list[dict[str, Any]]:
        """Every recorded span of one trace."""
        return await read_trace(self.js, trace_id)
