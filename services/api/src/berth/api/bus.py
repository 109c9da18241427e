"""The gateway's side of the bus: what it publishes and asks, always as the ``ui`` role and on
behalf of the HTTP caller, whose ``Authorization`` header travels with every request."""

from __future__ import annotations

import asyncio
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
from berth.shared.bus import event_headers, follow
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
        async with follow(self.nc, subject_id) as queue:
            yield queue

    async def spans(self, trace_id: str) -> list[dict[str, Any]]:
        """Every recorded span of one trace."""
        return await read_trace(self.js, trace_id)
