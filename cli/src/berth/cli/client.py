"""A thin client of the berth services: publishes the events a UI would, and asks queries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

from nats.aio.client import Client
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel

from berth.cli import endpoints, tokens
from berth.contracts.envelope import Actor, Event
from berth.contracts.queries import WorkloadListReply, WorkloadQuery, WorkloadReply, WorkloadView
from berth.contracts.roles import UI
from berth.contracts.subjects import (
    RPC_WORKLOADS_GET,
    RPC_WORKLOADS_LIST,
)
from berth.shared import bus
from berth.shared.errors import TransientError
from berth.shared.telemetry import read_trace, setup_tracing

SOURCE = "/berth/cli"


class BerthUnavailable(Exception):
    """The services (or NATS) cannot be reached."""


class Forbidden(LookupError):
    """An access rule does not let the caller see or do this; the message says who, what and
    where."""


def refused(message: str) -> LookupError:
    return Forbidden(message) if message.startswith("forbidden:") else LookupError(message)


class BerthClient:
    def __init__(
        self,
        nc: Client,
        tracer_provider: TracerProvider,
        actor: Actor,
        token: str | None = None,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.provider = tracer_provider
        self.tracer = tracer_provider.get_tracer("berth.cli")
        self.actor = actor
        # Every request carries it: the services act for whoever it proves, not for ``actor``.
        self.token = token

    async def publish(self, event: Event, subject: str | None = None) -> None:
        await bus.publish(self.js, event, subject=subject, token=self.token, timeout=10)

    async def request(
        self, subject: str, query: BaseModel, reply: type[Any], timeout: float = 10
    ) -> Any:
        try:
            return await bus.ask(self.nc, subject, query, reply, timeout=timeout, token=self.token)
        except TransientError as exc:
            raise BerthUnavailable(f"{exc}: is berth running? (make run)") from None

    async def workload(self, project: str, name: str) -> WorkloadView:
        reply: WorkloadReply = await self.request(
            RPC_WORKLOADS_GET,
            WorkloadQuery(project=project, name=name, actor=self.actor),
            WorkloadReply,
        )
        if reply.workload is None:
            raise refused(reply.error or f'no workload "{name}" in project "{project}"')
        return reply.workload

    async def workloads(self, query: WorkloadQuery) -> list[WorkloadView]:
        """Every workload the query selects, page after page, each after the last one's cursor
        (an offset would have intake read every row before it again); with ``query.limit``,
        only the page of that many from ``query.offset``."""
        found: list[WorkloadView] = []
        page = query.model_copy(update={"actor": self.actor})
        while True:
            reply: WorkloadListReply = await self.request(
                RPC_WORKLOADS_LIST, page, WorkloadListReply
            )
            if reply.error:
                raise refused(reply.error)
            found.extend(reply.workloads)
            if query.limit or reply.nextCursor is None:
                return found
            page = page.model_copy(update={"after": reply.nextCursor, "offset": None})

    async def spans(self, trace_id: str) -> list[dict[str, Any]]:
        """Every recorded span of one trace."""
        return await read_trace(self.js, trace_id)

    @asynccontextmanager
    async def watch(self, subject_id: str = "*") -> AsyncIterator[asyncio.Queue[Event]]:
        """Every event about ``subject_id`` (every workload with "*") from now on, decoded.

        Subscribed on core NATS before anything is published, so nothing can be missed; only the
        event types UIs follow (declared in the contracts, and all the ``ui`` role may read)."""
        async with bus.follow(self.nc, subject_id) as queue:
            yield queue


@asynccontextmanager
async def connect(
    nats_url: str,
    actor: Actor,
    *,
    credentials: str | None = None,
    role: str = UI,
    token: str | None = None,
) -> AsyncIterator[BerthClient]:
    """Connect as ``role`` (``ui`` unless told), with ``credentials`` or else the role's
    credential from the environment or from what `berth up` recorded. Requests carry
    ``token``, else the token of the identity ``actor`` names (see ``tokens``)."""
    if token is None and actor.kind is not None:
        try:
            token = tokens.bearer(actor.email)
        except tokens.NotLoggedIn as exc:
            raise BerthUnavailable(str(exc)) from None
    try:
        nc = await bus.connect(
            nats_url,
            name="berth-cli",
            credentials=credentials or endpoints.nats_credentials(nats_url, role),
            role=role,
            max_reconnect_attempts=0,
            allow_reconnect=False,
        )
    except Exception as exc:
        raise BerthUnavailable(
            f"cannot reach NATS at {nats_url}: {exc}. Is berth running? (make run)"
        ) from None
    provider = setup_tracing("berth-cli", nats_client=nc, loop=asyncio.get_running_loop())
    try:
        yield BerthClient(nc, provider, actor, token)
    finally:
        provider.force_flush(2000)
        await asyncio.sleep(0.05)
        await nc.flush()
        provider.shutdown()
        await nc.close()


def new_workload_id() -> str:
    return str(uuid4())


def elapsed(since: float) -> str:
    return f"{time.monotonic() - since:5.1f}s"
