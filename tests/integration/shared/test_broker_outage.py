"""The outbox across a broker outage: events written while NATS is down wait in PostgreSQL and are
published once it is back. These tests stop the session's nats-server, so they live apart and
always start it again before anything else runs."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from berth.cli.embedded import EmbeddedNats, port_open
from berth.contracts.events import WorkloadActionDeniedV1
from berth.shared import outbox
from berth.shared.bus import encode
from tests.integration.shared.helpers import (
    Probe,
    build_probe,
    denied,
    emitted_subject,
    eventually,
    publish,
    request,
    running,
    stored,
    unique,
)

N = 20


@contextlib.contextmanager
def broker_back_at_the_end(server: EmbeddedNats, nats_url: str) -> Iterator[EmbeddedNats]:
    if nats_url != server.url:
        pytest.skip("needs the nats-server of the test session, not an external one")
    try:
        yield server
    finally:
        if not port_open("127.0.0.1", server.port):
            server.start()


async def write_to_outbox(probe: Probe, events: list[WorkloadActionDeniedV1]) -> None:
    """What a handler's transaction does, without a message to cause it."""
    async with probe.engine.begin() as conn:
        await outbox.write(conn, probe.service.outbox_table, [outbox.outbox_row(e) for e in events])
    probe.service.relay.wake()


async def test_events_written_while_the_broker_is_down_are_published_when_it_is_back(
    nats_url: str, database_url: str, nc: Any, nats_server: EmbeddedNats
) -> None:
    js = nc.jetstream()
    events = [denied(unique("outage")) for _ in range(N)]
    async with running(build_probe(nats_url, database_url)) as probe:
        with broker_back_at_the_end(nats_server, nats_url):
            nats_server.stop()
            connection = probe.service.broker.connection
            await eventually(lambda: not connection.is_connected)

            await write_to_outbox(probe, events)
            # The relay has tried to publish them all, and they are still in the outbox.
            await eventually(lambda: probe.service.js.publish_async_pending() >= N)
            assert len(await probe.outbox_rows()) == N

            nats_server.start()
            await eventually(probe.outbox_drained, timeout=20)

        # Consumption resumed too.
        after = request(unique("after"))
        await publish(js, probe.subject(after.subject), after)
        await eventually(lambda: probe.batches, timeout=10)

    for e in events:
        [msg] = await stored(js, emitted_subject(e.subject))
        assert msg.data == encode(e)
        assert msg.headers is not None
        assert msg.headers["Nats-Msg-Id"] == str(e.id)
    assert await probe.rows() == [(after.id, after.subject)]


async def test_events_whose_acks_were_lost_in_a_broker_crash_are_published_again(
    nats_url: str, database_url: str, nc: Any, nats_server: EmbeddedNats
) -> None:
    js = nc.jetstream()
    events = [denied(unique("crash")) for _ in range(N)]
    async with running(build_probe(nats_url, database_url)) as probe:
        connection = probe.service.broker.connection
        with broker_back_at_the_end(nats_server, nats_url):
            # A frozen server takes the publishes into its socket buffer and never answers;
            # killing it then loses them with their acks, as a crash mid-publish does.
            assert nats_server._proc is not None
            pid = nats_server._proc.pid
            os.kill(pid, signal.SIGSTOP)
            try:
                await write_to_outbox(probe, events)
                await eventually(
                    lambda: (
                        probe.service.js.publish_async_pending() >= N
                        and connection.pending_data_size == 0
                    )
                )
                assert len(await probe.outbox_rows()) == N
            finally:
                os.kill(pid, signal.SIGKILL)
                nats_server.stop()
            nats_server.start()
            await eventually(probe.outbox_drained, timeout=20)

    for e in events:
        [msg] = await stored(js, emitted_subject(e.subject))
        assert msg.data == encode(e)
