"""Leader election over a fake lease store and a fake clock: one holder at a time, takeover only
once the lease has gone unrenewed for its duration (as the taker observed it), a holder that
cannot renew gives up before anyone may take over, and a released lease is taken at once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from berth.shared.leadership import LeaderElector, LeaseConflict, LeaseRecord, LeaseTiming

pytestmark = pytest.mark.unit

TIMING = LeaseTiming(duration=5.0, renew_deadline=3.5, retry=1.0)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> datetime:
        # The store's times: deliberately far off the monotonic clock, which is what counts.
        return datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        await asyncio.sleep(0)


class FakeLeases:
    """One record with a version bumped on every write, as a Kubernetes Lease's resourceVersion."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self.version = 0
        self.down = False
        self.writes: list[str] = []

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("API server unreachable")

    async def get(self) -> LeaseRecord | None:
        self._check()
        return self.record

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        self._check()
        if self.record is not None:
            raise LeaseConflict("exists")
        return self._store(record)

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        self._check()
        if self.record is None or record.version != self.record.version:
            raise LeaseConflict("modified")
        return self._store(record)

    def _store(self, record: LeaseRecord) -> LeaseRecord:
        self.version += 1
        self.record = replace(record, version=str(self.version))
        self.writes.append(record.holder)
        return self.record


def electors(n: int = 2) -> tuple[FakeLeases, Clock, list[LeaderElector]]:
    store, clock = FakeLeases(), Clock()
    return (
        store,
        clock,
        [
            LeaderElector(
                store, f"agent-{i}", TIMING, clock=clock, now=clock.wall, sleep=clock.sleep
            )
            for i in range(n)
        ],
    )


async def test_the_first_replica_takes_a_missing_lease_and_the_second_stands_by() -> None:
    store, clock, (a, b) = electors()
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert a.leading and not b.leading
    assert store.record is not None and store.record.holder == "agent-0"
    # Renewed in time, it stays the holder however long the standby keeps trying.
    for _ in range(20):
        await clock.sleep(TIMING.retry)
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
    assert store.record.transitions == 0


async def test_a_standby_takes_over_only_after_the_lease_went_unrenewed_for_its_duration() -> None:
    store, clock, (a, b) = electors()
    await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()  # b observes the record now
    # a dies: no more renewals.
    await clock.sleep(TIMING.duration - 0.5)
    assert not await b.try_acquire_or_renew()
    await clock.sleep(0.5)
    assert await b.try_acquire_or_renew()
    assert store.record is not None
    assert store.record.holder == "agent-1" and store.record.transitions == 1


async def test_expiry_counts_from_when_the_standby_saw_the_record_change() -> None:
    """The record's renewTime may be from a clock far behind: a standby that first looks at a
    lease renewed "long ago" still waits a whole duration from its own first sight of it."""
    store, clock, (a, b) = electors()
    await a.try_acquire_or_renew()
    assert store.record is not None
    store.record = replace(store.record, renewed_at=datetime(1999, 1, 1, tzinfo=UTC))
    assert not await b.try_acquire_or_renew()
    await clock.sleep(TIMING.duration / 2)
    assert not await b.try_acquire_or_renew()


async def test_two_replicas_taking_an_expired_lease_at_once_leave_one_holder() -> None:
    store, clock, (a, b, c) = electors(3)
    await a.try_acquire_or_renew()
    await b.try_acquire_or_renew()
    await c.try_acquire_or_renew()
    await clock.sleep(TIMING.duration + 0.1)
    won = await asyncio.gather(b.try_acquire_or_renew(), c.try_acquire_or_renew())
    assert sorted(won) == [False, True]
    assert store.record is not None
    holder = store.record.holder
    assert holder in ("agent-1", "agent-2")
    assert [e.leading for e in (b, c)].count(True) == 1


async def test_a_holder_that_cannot_renew_gives_up_before_anyone_may_take_over() -> None:
    store, clock, (a, b) = electors()
    await a.acquire()
    assert not await b.try_acquire_or_renew()
    lost_at: list[float] = []

    async def holder() -> None:
        await a.hold()
        lost_at.append(clock())

    renewed = clock()
    task = asyncio.create_task(holder())
    await asyncio.sleep(0)
    store.down = True  # the API server is unreachable from the holder
    await task
    assert not a.leading
    assert lost_at[0] - renewed >= TIMING.renew_deadline
    assert lost_at[0] - renewed < TIMING.duration
    # The standby, which saw the last renewal, may only take over later.
    store.down = False
    assert not await b.try_acquire_or_renew()
    await clock.sleep(renewed + TIMING.duration - clock())
    assert await b.try_acquire_or_renew()


async def test_a_holder_whose_lease_was_taken_steps_down_at_its_next_renewal() -> None:
    store, _clock, (a, _b) = electors()
    await a.acquire()
    assert store.record is not None
    # Taken behind its back (an operator deleted and a standby recreated it, say).
    store.record = replace(store.record, holder="agent-1", version="99")
    store.version = 99
    await asyncio.wait_for(a.hold(), 1)
    assert not a.leading


async def test_a_released_lease_is_taken_at_the_next_try() -> None:
    store, _clock, (a, b) = electors()
    await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    await a.release()
    assert not a.leading
    assert store.record is not None and store.record.holder == ""
    assert await b.try_acquire_or_renew()
    # Released by one that does not hold it: nothing is written.
    writes = len(store.writes)
    await a.release()
    assert len(store.writes) == writes


async def test_an_unreachable_store_is_a_failed_try_not_an_error() -> None:
    store, _clock, (a,) = electors(1)
    store.down = True
    assert not await a.try_acquire_or_renew()
    store.down = False
    await a.acquire()
    assert a.leading


def test_timing_must_let_the_holder_give_up_before_the_lease_expires() -> None:
    with pytest.raises(ValueError):
        LeaseTiming(duration=3.0, renew_deadline=3.0, retry=1.0)
    with pytest.raises(ValueError):
        LeaseTiming(duration=5.0, renew_deadline=2.0, retry=2.0)


def restarted(store: FakeLeases, clock: Clock, identity: str) -> LeaderElector:
    """A replica's process started again by its supervisor, under the replica's identity."""
    return LeaderElector(store, identity, TIMING, clock=clock, now=clock.wall, sleep=clock.sleep)


async def test_a_replica_restarted_under_its_identity_takes_its_lease_back_at_once() -> None:
    store, clock, (a, b) = electors()
    await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    # a is killed (no release) and started again at once, under the same identity.
    again = restarted(store, clock, "agent-0")
    assert await again.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert store.record is not None
    assert store.record.holder == "agent-0" and store.record.transitions == 0


async def test_two_live_replicas_with_stable_identities_never_both_lead() -> None:
    """Every retry, each live replica tries once; replicas are killed and started again under
    their identities, and one stays dead a while. After every round at most one leads, and the
    lease only changes hands once it went unrenewed for its duration."""
    store, clock, (a, b) = electors()
    live = {"agent-0": a, "agent-1": b}
    schedule = [
        [],
        ["agent-0"],  # the holder restarted: takes its lease back
        ["agent-1"],  # the standby restarted: still stands by
        [],
        ["agent-0", "agent-1"],
        [],
    ]
    holders: list[str] = []
    for kills in schedule:
        for name in kills:
            live[name] = restarted(store, clock, name)
        for _ in range(3):
            for elector in live.values():
                await elector.try_acquire_or_renew()
            assert [e.leading for e in live.values()].count(True) == 1
            assert store.record is not None
            holders.append(store.record.holder)
            await clock.sleep(TIMING.retry)
    assert set(holders) == {"agent-0"}
    # The holder dies and stays dead: the other takes over only after the duration.
    del live["agent-0"]
    waited = 0.0
    while not await b.try_acquire_or_renew():
        await clock.sleep(TIMING.retry)
        waited += TIMING.retry
    assert waited >= TIMING.duration - TIMING.retry
    # Started again, the first replica finds the lease under another identity: it stands by.
    live["agent-0"] = restarted(store, clock, "agent-0")
    for _ in range(5):
        for elector in live.values():
            await elector.try_acquire_or_renew()
        assert b.leading and not live["agent-0"].leading
        await clock.sleep(TIMING.retry)


async def test_a_holder_whose_identity_another_process_renews_steps_down() -> None:
    """Two processes given one identity (a misconfiguration): the one that finds the lease
    renewed under its name by the other stops leading at its next renewal."""
    store, clock, (a, _b) = electors()
    await a.acquire()
    await clock.sleep(0.1)
    twin = restarted(store, clock, "agent-0")
    assert await twin.try_acquire_or_renew()
    await asyncio.wait_for(a.hold(), 1)
    assert not a.leading and twin.leading


async def test_a_renewal_whose_answer_was_lost_is_still_the_holders_own() -> None:
    store, clock, (a,) = electors(1)
    await a.acquire()
    original = store.update

    async def lost_answer(record: LeaseRecord) -> LeaseRecord:
        await original(record)
        raise TimeoutError

    store.update = lost_answer  # type: ignore[method-assign]
    assert not await a.try_acquire_or_renew()
    store.update = original  # type: ignore[method-assign]
    await clock.sleep(TIMING.retry)
    assert await a.try_acquire_or_renew()
    assert a.leading
