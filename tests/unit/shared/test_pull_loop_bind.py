"""Binding a pull consumer at start waits out NATS not answering, and still fails fast on a
request NATS refuses."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import nats.errors
import pytest
from nats.js.errors import BadRequestError

from berth.contracts.events import SubmissionReceivedV1
from berth.shared.consumer import PullLoop, Subscription

SETTINGS = SimpleNamespace(batch_size=10, fetch_timeout=0.005, ack_wait_seconds=30)


class FlakyJetStream:
    """Answers add_consumer with the given errors first, then as NATS would."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.added = 0
        self.subscribed: list[str] = []

    async def add_consumer(self, stream: str, config: Any) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.added += 1

    async def pull_subscribe(self, subject: str, **_: Any) -> object:
        self.subscribed.append(subject)
        return object()


async def _nothing(*_: Any) -> None:
    return None


def loop_on(js: FlakyJetStream) -> PullLoop:
    sub: Subscription[Any] = Subscription(SubmissionReceivedV1, "test-bind", _nothing, "handle")
    loop = PullLoop(js, sub, runner=None, settings=SETTINGS)  # type: ignore[arg-type]
    loop.BIND_RETRY_SECONDS = 0.001
    return loop


async def test_a_jetstream_api_timeout_at_start_is_waited_out() -> None:
    js = FlakyJetStream(nats.errors.TimeoutError(), nats.errors.NoRespondersError())
    await loop_on(js).bind()
    assert js.added == 1
    assert js.subscribed == [f"{SubmissionReceivedV1.subject_prefix()}.*"]


async def test_a_refused_consumer_fails_the_bind_at_once() -> None:
    js = FlakyJetStream(BadRequestError(code=400, err_code=10012, description="bad config"))
    with pytest.raises(BadRequestError):
        await loop_on(js).bind()
    assert js.added == 0
