"""Failure handling of the shared runtime: rollback, retries, poison and undecodable messages.

Messages are published before the probe starts, so that its first fetch finds them all and they
share one batch, which is the situation these guarantees are about.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from berth.shared.bus import encode
from berth.shared.consumer import Incoming
from tests.integration.shared.helpers import (
    build_probe,
    deadletter_subject,
    emitted,
    emitted_subject,
    eventually,
    publish,
    request,
    running,
    stored,
    terminations,
    unique,
)


async def test_a_failed_batch_leaves_neither_rows_nor_events_and_its_retry_commits_both_once(
    nats_url: str, database_url: str, nc: Any
) -> None:
    js = nc.jetstream()
    probe = build_probe(nats_url, database_url)
    events = [request(unique("atomic")) for _ in range(3)]
    flaky = events[1]
    for e in events:
        await publish(js, probe.subject(e.subject), e)

    probe.fail = lambda item: item.event.id == flaky.id and item.msg.metadata.num_delivered == 1
    # What the failed attempts left behind, as seen when the message comes back.
    left_behind: list[tuple[int, int, int]] = []

    async def inspect_on_redelivery(item: Incoming[Any]) -> None:
        if item.event.id == flaky.id and item.msg.metadata.num_delivered == 2:
            t, outbox = probe.table, probe.service.outbox_table
            async with probe.engine.connect() as conn:
                rows = await conn.scalar(
                    select(func.count()).select_from(t).where(t.c.event_id == flaky.id)
                )
                queued = await conn.scalar(
                    select(func.count())
                    .select_from(outbox)
                    .where(outbox.c.subject == emitted_subject(flaky.subject))
                )
            published = await stored(js, emitted_subject(flaky.subject))
            left_behind.append((int(rows or 0), int(queued or 0), len(published)))

    probe.before = inspect_on_redelivery

    async with running(probe):
        await eventually(lambda: len(left_behind) == 1 and probe.settled())
        await eventually(probe.outbox_drained)
        rows = await probe.rows()

    assert left_behind == [(0, 0, 0)]
    assert Counter(rows) == Counter({(e.id, e.subject): 1 for e in events})
    # Its first delivery failed in the batch and again on its own; the redelivery succeeded.
    assert probe.deliveries[flaky.subject] == [1, 1, 2]
    published = await emitted(js, {e.subject for e in events})
    assert Counter(p.subject for p in published) == Counter({e.subject: 1 for e in events})


async def test_a_poison_message_is_retried_then_dead_lettered_without_holding_back_its_batch(
    nats_url: str, database_url: str, nc: Any
) -> None:
    js = nc.jetstream()
    probe = build_probe(nats_url, database_url)
    events = [request(unique("batch")) for _ in range(5)]
    poison = events[2]
    healthy = [e for e in events if e is not poison]
    acks = {e.id: await publish(js, probe.subject(e.subject), e) for e in events}
    probe.fail = lambda item: item.event.id == poison.id

    async with terminations(nc, probe) as terminated, running(probe):
        await eventually(lambda: terminated)
        await eventually(probe.settled)
        await eventually(probe.outbox_drained)
        rows = await probe.rows()

    assert probe.batches[0] == 5
    assert Counter(rows) == Counter({(e.id, e.subject): 1 for e in healthy})
    # max_deliver=3: the batch, alone in the same delivery, then two redeliveries.
    assert probe.deliveries[poison.subject] == [1, 1, 2, 3]
    assert all(probe.deliveries[e.subject] == [1, 1] for e in healthy)

    assert len(terminated) == 1
    assert terminated[0]["stream_seq"] == acks[poison.id].seq
    assert terminated[0]["deliveries"] == 3

    original = probe.subject(poison.subject)
    [dead] = await stored(js, deadletter_subject(probe, original))
    assert dead.data == encode(poison)
    assert dead.headers is not None
    assert dead.headers["Berth-Original-Subject"] == original
    reason = json.loads(dead.headers["Berth-Reason"])
    assert reason.startswith("gave up after 3 deliveries")
    assert f"poison {poison.subject}" in reason

    published = await emitted(js, {e.subject for e in events})
    assert sorted(p.subject for p in published) == sorted(e.subject for e in healthy)


async def test_a_subscription_of_its_own_max_deliver_dead_letters_after_that_many(
    nats_url: str, database_url: str, nc: Any
) -> None:
    js = nc.jetstream()
    probe = build_probe(nats_url, database_url, subscription_max_deliver=2, max_deliver=5)
    poison = request(unique("limit"))
    await publish(js, probe.subject(poison.subject), poison)
    probe.fail = lambda _item: True

    async with terminations(nc, probe) as terminated, running(probe):
        await eventually(lambda: terminated)
        await eventually(probe.settled)

    assert probe.deliveries[poison.subject] == [1, 2]
    assert terminated[0]["deliveries"] == 2
    [dead] = await stored(js, deadletter_subject(probe, probe.subject(poison.subject)))
    assert dead.headers is not None
    assert json.loads(dead.headers["Berth-Reason"]).startswith("gave up after 2 deliveries")
    assert await probe.rows() == []


async def test_undecodable_messages_are_dead_lettered_at_once_and_the_rest_is_handled(
    nats_url: str, database_url: str, nc: Any
) -> None:
    js = nc.jetstream()
    probe = build_probe(nats_url, database_url)
    first, last = request(unique("good")), request(unique("good"))
    bad = {
        probe.subject(unique("not-json")): b'{"id": "no closing brace"',
        # Valid JSON, but not a WorkloadActionRequestedV1: no source, subject, actor or data.
        probe.subject(unique("not-the-event")): json.dumps(
            {"id": "1f0c4f1e-8a9b-4a8e-9a55-52a6a3c1ad40", "type": "berth.workload.other"}
        ).encode(),
    }
    await publish(js, probe.subject(first.subject), first)
    for subject, data in bad.items():
        await js.publish(subject, data, headers={"Nats-Msg-Id": unique("bad")})
    await publish(js, probe.subject(last.subject), last)

    async with terminations(nc, probe) as terminated, running(probe):
        await eventually(lambda: len(terminated) == 2 and probe.settled())
        rows = await probe.rows()

    assert rows == [(first.id, first.subject), (last.id, last.subject)]
    assert sum(probe.batches) == 2
    assert [t["deliveries"] for t in terminated] == [1, 1]
    for subject, data in bad.items():
        [dead] = await stored(js, deadletter_subject(probe, subject))
        assert dead.data == data
        assert dead.headers is not None
        assert dead.headers["Berth-Original-Subject"] == subject
        reason = json.loads(dead.headers["Berth-Reason"])
        assert reason.startswith("undecodable WorkloadActionRequestedV1")
