"""Lease-based leader election, for a service of which only one replica may work at a time.

The rules are client-go's (``tools/leaderelection``), over any store of one lease record with
optimistic concurrency (a Kubernetes ``coordination.k8s.io/v1`` Lease, whose resourceVersion
turns a concurrent write into a conflict):

- A replica takes the lease when there is none, when it is released (no holder), or when its
  record has not changed for ``duration`` seconds *as this replica observed it*: the time is
  measured on the local monotonic clock from when the record was last seen to change, never
  read from the record, so clocks that disagree between machines cannot shorten a lease.
- Two replicas writing at once: the store accepts one write and refuses the other (a
  conflict), so at most one holds the lease after any write.
- The holder renews every ``retry`` seconds. Should no renewal succeed for ``renew_deadline``
  seconds (the store unreachable, the process starved), it gives the lease up as lost. That
  deadline is shorter than ``duration``, so the old holder has stopped before any other
  replica may see the lease as expired.
- A holder that stops cleanly releases the lease: the next replica takes over at its next try
  instead of waiting the lease out.
- A replica finding the lease held under its own identity renews it at once: with an identity
  kept across restarts of one replica (a pod's name, a supervisor's process slot), the replica
  started again after a crash takes back the lease its dead process held, as client-go's
  elector does, instead of waiting it out. Identities must therefore differ between replicas
  alive at once; should two share one anyway, the holder that finds the lease renewed under
  its identity by someone else steps down, as it does when another replica took it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

log = logging.getLogger(__name__)


class LeaseConflict(Exception):
    """The lease was written by someone else since it was read (or created meanwhile)."""


@dataclass(frozen=True)
class LeaseRecord:
    holder: str  # "" once released
    duration_seconds: float
    acquired_at: datetime | None = None
    renewed_at: datetime | None = None
    transitions: int = 0
    # The store's version of the record (a Kubernetes resourceVersion); "" before it exists.
    version: str = ""


class LeaseStore(Protocol):
    async def get(self) -> LeaseRecord | None:
        """The record, or None when there is none yet."""
        ...

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        """Store the first record; ``LeaseConflict`` if one exists by now."""
        ...

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        """Replace the record of ``record.version``; ``LeaseConflict`` if it changed since."""
        ...


@dataclass(frozen=True)
class LeaseTiming:
    duration: float = 15.0  # seconds without a renewal after which another replica may take over
    renew_deadline: float = 10.0  # the holder gives up after this long without a renewal
    retry: float = 2.0  # seconds between tries to take or renew the lease

    def __post_init__(self) -> None:
        if not 0 < self.retry < self.renew_deadline < self.duration:
            raise ValueError("lease timing needs 0 < retry < renew_deadline < duration")


class LeaderElector:
    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        timing: LeaseTiming | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.identity = identity
        self.timing = timing or LeaseTiming()
        self._clock = clock
        self._now = now
        self._sleep = sleep
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._renewed_at: float | None = None
        # The renewal times of this elector's last writes: a record under its identity with
        # another renewal time was written by another process.
        self._written: deque[datetime] = deque(maxlen=4)
        self.leading = False

    async def acquire(self) -> None:
        """Return once this replica holds the lease (tries every ``retry`` seconds)."""
        while not await self.try_acquire_or_renew():
            await self._sleep(self.timing.retry)
        log.info("%s holds the lease", self.identity)

    async def hold(self) -> None:
        """Renew the lease while it can; return when it is lost (see the module doc)."""
        while self.leading:
            await self._sleep(self.timing.retry)
            if await self.try_acquire_or_renew():
                continue
            assert self._renewed_at is not None
            if self._clock() - self._renewed_at >= self.timing.renew_deadline or (
                self._observed is not None and self._observed.holder != self.identity
            ):
                self.leading = False
        log.error("%s lost the lease", self.identity)

    async def release(self) -> None:
        """Give the lease up (a clean stop): the next replica need not wait it out."""
        if not self.leading or self._observed is None:
            return
        self.leading = False
        released = replace(self._observed, holder="", duration_seconds=1.0, renewed_at=self._now())
        try:
            await self.store.update(released)
        except Exception as exc:
            # It then expires by itself.
            log.warning("%s: releasing the lease failed: %s", self.identity, _cause(exc))

    async def try_acquire_or_renew(self) -> bool:
        """One try; True when this replica holds the lease afterwards."""
        now = self._now()
        try:
            current = await self.store.get()
            if current is None:
                record = LeaseRecord(self.identity, self.timing.duration, now, now, 0)
                self._written.append(now)
                return self._took(await self.store.create(record))
            if self._observed is None or current.version != self._observed.version:
                if self.leading and current.holder == self.identity and not self._wrote(current):
                    log.error(
                        "%s: another process renewed the lease under this identity; stepping "
                        "down (replicas alive at once need identities of their own)",
                        self.identity,
                    )
                    self._observed, self._observed_at = current, self._clock()
                    self.leading = False
                    return False
                self._observed, self._observed_at = current, self._clock()
            held_by_other = current.holder not in ("", self.identity)
            if held_by_other and self._clock() - self._observed_at < current.duration_seconds:
                return False
            if current.holder == self.identity:
                record = replace(current, duration_seconds=self.timing.duration, renewed_at=now)
            else:
                record = replace(
                    current,
                    holder=self.identity,
                    duration_seconds=self.timing.duration,
                    acquired_at=now,
                    renewed_at=now,
                    transitions=current.transitions + 1,
                )
            if current.holder == self.identity and not self.leading:
                log.info("%s takes back the lease it held before a restart", self.identity)
            self._written.append(now)
            return self._took(await self.store.update(record))
        except LeaseConflict:
            return False
        except Exception as exc:
            # The store unreachable says nothing about who holds the lease: try again later.
            log.warning("%s: lease unavailable: %s", self.identity, _cause(exc))
            return False

    def _wrote(self, record: LeaseRecord) -> bool:
        # A write whose answer was lost still counts as this elector's. Compared to the
        # millisecond: a store may keep renewal times less precisely than they were written.
        at = record.renewed_at
        return at is not None and any(
            abs(at - written) < timedelta(milliseconds=1) for written in self._written
        )

    def _took(self, record: LeaseRecord) -> bool:
        self._observed, self._observed_at = record, self._clock()
        self._renewed_at = self._observed_at
        self.leading = True
        return True


def _cause(exc: BaseException) -> str:
    # A timeout's message is empty: its type is the whole story.
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
