"""Happy-path delivery of the shared runtime: batches, exactly-once effects, the outbox."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from typing import Any

import pytest

from berth.shared.bus import encode
from tests.integration.shared.helpers import (
    build_probe,
    emitted,
    emitted_subject,
    eventually,
    publish,
    request,
    request_headers,
    running,
    stored,
    unique,
)

N = 500
LONE = 40


async def test_a_burst_is_handled_once_each_in_batches_and_every_emitted_event_is_published(
    nats_url: str, database_url: str, nc: Any
) -> None:
    js = nc.jetstream()
    token = unique("burst")
    events = [request(f"{token}-{i}") for i in range(N)]
    async with running(build_probe(nats_url, database_url)) as probe:
        acks = [
            await js.publish_async(probe.subject(e.subject), encode(e), headers=request_headers(e))
            for e in events
        ]
        await asyncio.gather(*acks)

        async def all_handled() -> bool:
            return await probe.count(probe.table) >= N

        await eventually(all_handled, timeout=20)
        await eventually(probe.outbox_drained)
        await eventually(probe.settled)
        rows = await probe.rows()

    assert len(rows) == N
    assert Counter(event_id for event_id, _ in rows) == Counter({e.id: 1 for e in events})
    assert sum(probe.batches) == N
    # The point of the runtime: one transaction for many messages, not one per message.
    assert max(probe.batches) > 1
    assert len(probe.batches) < N / 2
    assert all(d == [1] for d in probe.deliveries.values())

    published = await emitted(js, {e.subject for e in events})
    assert len(published) == N
    assert {p.causationid for p in published} == {e.id for e in events}
    assert {p.subject for p in published} == {e.subject for e in events}


@pytest.mark.parametrize("arrival", ["in separate batches", "in one batch"])
async def test_an_event_published_again_past_the_duplicate_window_is_handled_once(
    nats_url: str, database_url: str, nc: Any, arrival: str
) -> None:
    js = nc.jetstream()
    event = request(unique("twice"))
    probe = build_probe(nats_url, database_url)
    subject = probe.subject(event.subject)
    # A different Nats-Msg-Id is what a copy looks like once the server's duplicate window has
    # passed: the server stores it, so only the consumer can drop it.
    resend = functools.partial(publish, js, subject, event, msg_id=unique("resent"))
    if arrival == "in one batch":
        await publish(js, subject, event)
        await resend()
    async with running(probe):
        if arrival == "in separate batches":
            await publish(js, subject, event)
            await eventually(lambda: probe.batches and probe.settled())
            await resend()

        async def both_acked() -> Any:
            info = await probe.consumer()
            acked = info.ack_floor.consumer_seq if info.ack_floor else 0
            return info if acked == 2 and info.num_ack_pending == 0 else None

        info = await eventually(both_acked)
        await eventually(probe.outbox_drained)
        rows = await probe.rows()
        inbox = await probe.count(probe.service.inbox_table)

    assert len(await stored(js, subject)) == 2
    assert info.delivered.consumer_seq == 2
    assert info.num_pending == 0
    assert info.num_redelivered == 0
    assert rows == [(event.id, event.subject)]
    assert inbox == 1
    assert probe.batches == [1]
    assert len(await stored(js, emitted_subject(event.subject))) == 1


async def test_lone_messages_keep_flowing_one_after_another(
    nats_url: str, database_url: str, nc: Any
) -> None:
    js = nc.jetstream()
    events = [request(unique("lone")) for _ in range(LONE)]
    async with running(build_probe(nats_url, database_url)) as probe:
        for n, event in enumerate(events, start=1):
            await publish(js, probe.subject(event.subject), event)

            async def handled(n: int = n) -> bool:
                return sum(probe.batches) == n

            # Each arrives alone, so every fetch that gathers a batch around it comes back
            # empty, which nats-py reports in more than one way: none may end the consumer loop.
            # A loop that ended never handles the message, however long this waits; the bound
            # only has to outlast a busy machine (5 s did not, once, with a benchmark beside it).
            await eventually(handled, timeout=30)
        rows = await probe.rows()

    assert rows == [(e.id, e.subject) for e in events]
    assert probe.batches == [1] * LONE
