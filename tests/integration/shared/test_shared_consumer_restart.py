"""A consumer that stops while messages keep coming leaves none behind: the next instance of the
same durable consumer gets every one at once, not after ``ack_wait``.

Before, stopping cancelled the long poll: a pull request still pending on the server took the
next messages into a subscription that was going away (and a batch fetched but not yet handled
was dropped), so they came back only after ``ack_wait`` (30 s)."""

from __future__ import annotations

import asyncio
from typing import Any

from berth.contracts.events import WorkloadActionDeniedV1, WorkloadActionRequestedV1
from berth.shared.consumer import Subscription
from berth.shared.service import Service
from tests.integration.shared.helpers import (
    OPERATION,
    Probe,
    build_probe,
    eventually,
    publish,
    request,
    running,
    unique,
)

ACK_WAIT = 30.0


def same_consumer(probe: Probe) -> Probe:
    """A new instance of ``probe``'s service: same durable consumer, same tables."""
    service = Service(probe.service.settings, probe.table.metadata, migrations_package=None)
    again = Probe(service, probe.table, prefix=probe.prefix, durable=probe.durable)
    service.publishes(WorkloadActionDeniedV1)
    service.subscribe(
        Subscription(
            WorkloadActionRequestedV1,
            durable=probe.durable,
            handler=again.handle,
            operation=OPERATION,
            subject_prefix=probe.prefix,
        )
    )
    return again


async def test_messages_published_while_a_consumer_stops_are_not_held_for_ack_wait(
    nats_url: str, database_url: str, nc: Any
) -> None:
    js = nc.jetstream()
    first = build_probe(nats_url, database_url, ack_wait_seconds=ACK_WAIT)
    ids: list[str] = []
    publishing = True

    async def publish_all() -> None:
        while publishing:
            subject_id = unique("stop")
            await publish(js, first.subject(subject_id), request(subject_id))
            ids.append(subject_id)
            await asyncio.sleep(0.002)

    publisher = asyncio.create_task(publish_all())
    # Two instances in turn, each stopped while messages keep arriving: at a long poll, a
    # gathering fetch or a batch in hand, wherever the stop falls.
    instance = first
    for _ in range(2):
        async with running(instance):
            await asyncio.sleep(0.3)
        instance = same_consumer(first)
    publishing = False
    await publisher

    last = instance
    await last.service.app.start()
    try:
        # Well within ack_wait: no message waits for it.
        await eventually(last.settled, timeout=ACK_WAIT / 3)
        handled = [subject_id for _event_id, subject_id in await last.rows()]
        assert sorted(handled) == sorted(ids)  # each once, by one instance or another
    finally:
        await last.service.app.stop()


async def test_a_batch_being_gathered_when_the_consumer_stops_is_handled_before_it_goes(
    nats_url: str, database_url: str, nc: Any
) -> None:
    js = nc.jetstream()
    # A long gathering window, so that the stop falls inside it for sure.
    first = build_probe(nats_url, database_url, ack_wait_seconds=ACK_WAIT, fetch_timeout=2.0)
    subject_id = unique("gathering")
    async with running(first):
        await publish(js, first.subject(subject_id), request(subject_id))

        async def delivered() -> bool:
            return (await first.consumer()).num_ack_pending == 1

        await eventually(delivered)
        # Leaving the block stops the service while the message is in hand, not yet handled.
    assert [s for _e, s in await first.rows()] == [subject_id]

    second = same_consumer(first)
    await second.service.app.start()
    try:
        await eventually(second.settled, timeout=ACK_WAIT / 3)
        assert [s for _e, s in await second.rows()] == [subject_id]  # handled once
    finally:
        await second.service.app.stop()
