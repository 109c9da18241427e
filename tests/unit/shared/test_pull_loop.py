"""How a pull loop makes a batch around the message its long poll returned: it takes only what
the server said was waiting, so a lone message is handled at once instead of after a gathering
fetch that waits for more until it expires; and a unit of work wakes the outbox relay before
its after-commit callbacks run."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError

from berth.contracts.events import WorkloadActionRequestedV1
from berth.shared.consumer import PullLoop, Subscription, unit_of_work, waiting_after

BATCH = 8
GATHER = 0.25


def delivered(seq: int, pending: int) -> Msg:
    """A message as JetStream delivers it: its ack subject tells how many more were waiting."""
    reply = f"$JS.ACK.WORKLOAD.probe.1.{seq}.{seq}.1700000000000000000.{pending}"
    return Msg(_client=None, subject="workload.probe.v1.x", reply=reply)  # type: ignore[arg-type]


class FakePull:
    """A pull subscription holding ``waiting`` messages; records each fetch."""

    def __init__(self, waiting: list[Msg]) -> None:
        self.waiting = waiting
        self.fetches: list[tuple[int, float]] = []

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        self.fetches.append((batch, timeout))
        taken, self.waiting = self.waiting[:batch], self.waiting[batch:]
        if not taken:
            raise NatsTimeoutError
        return taken


class FakeRunner:
    def __init__(self) -> None:
        self.batches: list[list[Msg]] = []

    async def run(self, msgs: Sequence[Msg], *_args: Any) -> float:
        self.batches.append(list(msgs))
        return 0.0


async def _nothing(_items: Any, _unit: Any) -> None:
    return None


def pull_loop(waiting: list[Msg]) -> tuple[PullLoop, FakePull, FakeRunner]:
    runner = FakeRunner()
    settings = SimpleNamespace(batch_size=BATCH, fetch_timeout=GATHER, ack_wait_seconds=30.0)
    sub = Subscription(WorkloadActionRequestedV1, "probe", _nothing, "probe")
    loop = PullLoop(None, sub, runner, settings)  # type: ignore[arg-type]
    pull = FakePull(waiting)
    loop._psub = pull
    return loop, pull, runner


async def test_a_lone_message_is_handled_without_a_gathering_fetch() -> None:
    first = delivered(1, pending=0)
    loop, pull, runner = pull_loop([])

    await loop._handle([first])

    assert pull.fetches == []
    assert runner.batches == [[first]]


async def test_the_messages_already_waiting_join_the_batch_in_one_fetch_of_that_many() -> None:
    first = delivered(1, pending=3)
    rest = [delivered(seq, pending=3 - seq + 1) for seq in (2, 3, 4)]
    loop, pull, runner = pull_loop(list(rest))

    await loop._handle([first])

    # As many as were waiting: the request is satisfied at once, never held until it expires.
    assert pull.fetches == [(3, GATHER)]
    assert runner.batches == [[first, *rest]]


async def test_a_backlog_fills_the_batch_and_leaves_the_rest_for_the_next() -> None:
    first = delivered(1, pending=50)
    backlog = [delivered(seq, pending=50 - seq + 1) for seq in range(2, 52)]
    loop, pull, runner = pull_loop(list(backlog))

    await loop._handle([first])

    assert pull.fetches == [(BATCH - 1, GATHER)]
    assert runner.batches == [[first, *backlog[: BATCH - 1]]]
    assert len(pull.waiting) == 50 - (BATCH - 1)


async def test_messages_taken_meanwhile_by_another_instance_leave_a_partial_batch() -> None:
    # The server said two were waiting, but another replica got them first: the batch goes on.
    first = delivered(1, pending=2)
    loop, pull, runner = pull_loop([])

    await loop._handle([first])

    assert pull.fetches == [(2, GATHER)]
    assert runner.batches == [[first]]


def test_a_message_without_the_count_gathers_a_batch_as_before() -> None:
    plain = Msg(_client=None, subject="workload.probe.v1.x", reply="")  # type: ignore[arg-type]
    assert waiting_after(plain) >= BATCH
    assert waiting_after(delivered(7, pending=0)) == 0
    assert waiting_after(delivered(7, pending=12)) == 12


@pytest.mark.parametrize("rows", [1, 0])
async def test_the_relay_is_woken_before_the_after_commit_callbacks_run(rows: int) -> None:
    order: list[str] = []

    class Relay:
        def wake(self) -> None:
            order.append("wake")

    class Connection:
        async def execute(self, *_args: Any) -> None:
            order.append("write")

    class Engine:
        @contextlib.asynccontextmanager
        async def begin(self) -> AsyncIterator[Connection]:
            yield Connection()
            order.append("commit")

    async def callback() -> None:
        order.append("callback")

    table = SimpleNamespace(insert=lambda: "insert")
    async with unit_of_work(Engine(), table, Relay()) as unit:  # type: ignore[arg-type]
        unit.rows.extend({"subject": "s"} for _ in range(rows))
        unit.after_commit.append(callback)

    # A callback's round trips (applying objects to a cluster) no longer hold the events back.
    expected = ["write", "commit", "wake", "callback"] if rows else ["commit", "callback"]
    assert order == expected
