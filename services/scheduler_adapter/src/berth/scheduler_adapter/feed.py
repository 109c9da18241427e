"""Fan-out of workload snapshots to any number of subscribers, in batches."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

from berth.scheduler_adapter.backend import WorkloadSnapshot


class _Subscriber:
    __slots__ = ("buffer", "ready")

    def __init__(self) -> None:
        self.buffer: deque[WorkloadSnapshot] = deque()
        self.ready = asyncio.Event()


class SnapshotFeed:
    def __init__(self, batch_size: int, gather: float = 0.0) -> None:
        """``gather``: seconds a subscriber that waited for news waits again, for what comes
        right after (the same workload's other objects, from the other watches) to join the
        batch: one transaction for them all, and one phase event per workload."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._batch_size = batch_size
        self._gather = gather
        self._subscribers: list[_Subscriber] = []
        self._closed = False

    @property
    def listened(self) -> bool:
        return bool(self._subscribers)

    def publish(self, snapshot: WorkloadSnapshot) -> None:
        for subscriber in self._subscribers:
            subscriber.buffer.append(snapshot)
            subscriber.ready.set()

    def close(self) -> None:
        self._closed = True
        for subscriber in self._subscribers:
            subscriber.ready.set()

    def subscribe(
        self, resync: Callable[[], list[WorkloadSnapshot]]
    ) -> AsyncIterator[list[WorkloadSnapshot]]:
        """Register a subscriber now (not at its first iteration), so that whatever the caller
        does before it starts reading (e.g. apply workloads at start) is in its buffer."""
        subscriber = _Subscriber()
        # Registering and taking the resync happen without a suspension point in between, so
        # every later change lands in the buffer and nothing falls between the two.
        self._subscribers.append(subscriber)
        return self._read(subscriber, resync())

    async def _read(
        self, subscriber: _Subscriber, known: list[WorkloadSnapshot]
    ) -> AsyncIterator[list[WorkloadSnapshot]]:
        try:
            for start in range(0, len(known), self._batch_size):
                yield known[start : start + self._batch_size]
            while not self._closed:
                if not subscriber.buffer:
                    subscriber.ready.clear()
                    await subscriber.ready.wait()
                    if self._gather > 0 and not self._closed:
                        await asyncio.sleep(self._gather)
                    continue
                size = min(self._batch_size, len(subscriber.buffer))
                yield [subscriber.buffer.popleft() for _ in range(size)]
        finally:
            self._subscribers.remove(subscriber)
