"""Test doubles for handlers: a unit of work without a database, and in-memory stores that roll
back with it (the fakes of *Architecture Patterns with Python*, chapters 6 and 13).

A batch handler receives the messages of a batch and a unit of work (``consumer.UnitOfWork``:
``emit`` into the outbox, in the batch's transaction) and reaches its service's state through a
store port. A unit test hands it a ``FakeUnitOfWork`` and the service's in-memory store instead; the
handler's code is the same::

    policies = InMemoryPolicyStore()                  # the service's own fake store
    uow = FakeUnitOfWork(policies)                    # the store rolls back with the unit
    await handlers.evaluate_submissions([incoming(event)], uow, policies=lambda _: policies)
    (rejected,) = uow.events_of(PolicyRejectedV1)

An in-memory store keeps its rows in ``InMemoryTable``s (immutable rows by primary key) and
offers ``snapshot``/``restore`` so that a unit of work that fails leaves it as it was.
Nothing here is used by a running service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from nats.aio.msg import Msg
from opentelemetry.sdk.trace import TracerProvider

from berth.contracts.envelope import Event
from berth.shared import outbox
from berth.shared.bus import encode
from berth.shared.consumer import Cause, Incoming, Publishes, trace_context

E = TypeVar("E", bound=Event)
K = TypeVar("K")
R = TypeVar("R")

# Recording spans (attributes can be read back) that are exported nowhere.
_TRACER = TracerProvider().get_tracer("berth.testing")


def incoming(event: E, *, operation: str = "handle") -> Incoming[E]:
    """``event`` as a batch handler receives it, with a span of its own and no broker."""
    span = _TRACER.start_span(operation, attributes={"berth.event.type": event.type})
    msg = Msg(_client=None, subject=event.subject_name, data=encode(event))  # type: ignore[arg-type]
    return Incoming(event, span, msg)


@dataclass(frozen=True)
class Emitted:
    """An event a handler emitted, and the message that caused it (whose trace it joins)."""

    event: Event
    cause: Cause


class Transactional(Protocol):
    """A fake store that rolls back with a ``FakeUnitOfWork``."""

    def snapshot(self) -> Any: ...

    def restore(self, snapshot: Any) -> None: ...


class FakeUnitOfWork:
    """A unit of work without a database: records what is emitted, with its cause.

    Pass it where a handler takes a ``UnitOfWork``, or where code opens units of work (a
    ``UnitFactory``): calling it returns itself, and ``async with`` it commits on success or rolls
    back the stores given to it (and the events emitted inside) on an exception. Not reentrant.

    ``publishes`` (the service's declared event types, as given to ``Service.publishes``) makes
    ``emit`` refuse any other type, as a running service's unit of work does.
    """

    def __init__(
        self,
        *stores: Transactional,
        publishes: Iterable[type[Event]] | None = None,
        service: str = "service",
    ) -> None:
        self.stores = stores
        self.publishes = Publishes.of(service, publishes) if publishes is not None else None
        self.emitted: list[Emitted] = []
        self.after_commit: list[Callable[[], Awaitable[None]]] = []
        self.commits = 0
        self.rollbacks = 0
        self._mark = 0
        self._snapshots: list[Any] = []

    def emit(self, event: Event, cause: Cause = None) -> None:
        if self.publishes is not None:
            self.publishes.check(event)
        # Encoded as the outbox would, so an event that cannot be published fails here too.
        outbox.outbox_row(event, trace_context(cause))
        self.emitted.append(Emitted(event, cause))

    @property
    def events(self) -> list[Event]:
        return [e.event for e in self.emitted]

    def events_of(self, kind: type[E]) -> list[E]:
        """The emitted events of one type, in order."""
        return [e.event for e in self.emitted if isinstance(e.event, kind)]

    def cause_of(self, event: Event) -> Cause:
        return next(e.cause for e in self.emitted if e.event is event)

    def __call__(self) -> FakeUnitOfWork:
        return self

    async def __aenter__(self) -> FakeUnitOfWork:
        self._mark = len(self.emitted)
        self._snapshots = [store.snapshot() for store in self.stores]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            del self.emitted[self._mark :]
            for store, snapshot in zip(self.stores, self._snapshots, strict=True):
                store.restore(snapshot)
            self.after_commit.clear()
            self.rollbacks += 1
            return
        self.commits += 1
        callbacks, self.after_commit = self.after_commit, []
        for callback in callbacks:
            await callback()


class InMemoryTable(Generic[K, R]):
    """Rows by primary key, for in-memory stores. Rows must be immutable (frozen dataclasses):
    a snapshot copies the mapping, not the rows."""

    def __init__(self) -> None:
        self.rows: dict[K, R] = {}

    def get(self, key: K) -> R | None:
        return self.rows.get(key)

    def put(self, key: K, row: R) -> None:
        """Insert or replace (an upsert)."""
        self.rows[key] = row

    def insert_new(self, key: K, row: R) -> bool:
        """Insert unless the key is taken (``ON CONFLICT DO NOTHING``); whether it was inserted."""
        if key in self.rows:
            return False
        self.rows[key] = row
        return True

    def delete(self, key: K) -> R | None:
        return self.rows.pop(key, None)

    def __iter__(self) -> Iterator[R]:
        return iter(list(self.rows.values()))

    def __len__(self) -> int:
        return len(self.rows)

    def snapshot(self) -> dict[K, R]:
        return dict(self.rows)

    def restore(self, snapshot: dict[K, R]) -> None:
        self.rows = dict(snapshot)
