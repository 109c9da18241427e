"""Nothing poisons a service, and nothing is silently lost: outbox rows that can never be
published are set aside with the reason while later events still leave; a database outage
longer than the redelivery budget loses no message; a message whose envelope disagrees with
its subject is dead-lettered with the reason; every request-reply request gets an answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from berth.contracts.events import WorkloadActionDeniedV1
from berth.contracts.queries import ErrorReply, HealthQuery, HealthReply
from berth.contracts.subjects import rpc_health
from berth.shared import deadletters, outbox
from berth.shared.bus import ask
from berth.shared.errors import PermanentError
from tests.integration.shared.helpers import (
    TcpProxy,
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

# Longer than the redelivery budget of the probe (3 deliveries, 1 s ack wait, 0.1 s nak delay:
# about 3 s), which used to dead-letter every message published during an outage.
OUTAGE_SECONDS = 12.0


async def dead_letters(js: Any, service: str) -> list[deadletters.DeadLetter]:
    msgs = await stored(js, f"deadletter.{service}.v1.>")
    return [deadletters.DeadLetter.from_stored(m.seq, m.headers, m.data) for m in msgs]


async def test_rows_that_cannot_be_published_are_set_aside_and_later_events_still_leave(
    nats_url: str, database_url: str, nc: Any
) -> None:
    js = nc.jetstream()
    probe = build_probe(nats_url, database_url)
    good = denied(unique("after"))
    template = outbox.outbox_row(denied(unique("bad")))
    bad_subjects = [
        "workload.action-denied.v1.evil one",
        "submission.rejected.v1.x\n",
        "submission.rejected.v1.",
        "",
    ]
    async with running(probe):
        async with probe.engine.begin() as conn:
            rows = [{**template, "subject": s} for s in bad_subjects]
            # Larger than the server's maximum payload (1 MiB).
            rows.append({**outbox.outbox_row(denied(unique("huge"))), "payload": b"x" * (2 << 20)})
            rows.append(outbox.outbox_row(good))
            await outbox.write(conn, probe.service.outbox_table, rows)
        probe.service.relay.wake()
        await eventually(probe.outbox_drained, timeout=30)
        [sent] = await stored(js, emitted_subject(good.subject))
        assert WorkloadActionDeniedV1.model_validate_json(sent.data).id == good.id

        letters = await dead_letters(js, probe.name)
        assert len(letters) == 5
        by_subject = {d.original_subject: d for d in letters}
        assert "invalid subject" in by_subject["workload.action-denied.v1.evil one"].reason
        assert "invalid subject" in by_subject["submission.rejected.v1.x\\n"].reason
        huge = next(d for d in letters if d.truncated)
        assert "MaxPayload" in huge.reason
        assert all(d.origin == "outbox" and d.service == probe.name for d in letters)

        health = await ask(nc, rpc_health(probe.name), HealthQuery(), HealthReply, timeout=5)
        assert health.status == "degraded"
        assert health.deadLetters == 5
        assert health.outboxPending == 0
        assert any("dead letters" in p for p in health.problems)


async def test_a_database_outage_longer_than_the_redelivery_budget_loses_nothing(
    nats_url: str, database_url: str, nc: Any
) -> None:
    js = nc.jetstream()
    proxy = await TcpProxy(database_url).start()
    probe = build_probe(
        nats_url, proxy.url, max_deliver=3, ack_wait_seconds=1, nak_delay_seconds=0.1
    )
    events = [request(unique("outage")) for _ in range(100)]
    try:
        async with running(probe):
            await proxy.cut()
            for event in events:
                await publish(js, probe.subject(event.subject), event)
            await asyncio.sleep(OUTAGE_SECONDS)
            await proxy.restore()

            async def all_recorded() -> bool:
                return len(await probe.rows()) >= len(events)

            await eventually(all_recorded, timeout=120, interval=0.5)
            await eventually(probe.settled, timeout=30)
            rows = await probe.rows()
        # Each exactly once, none dead-lettered.
        assert sorted(subject for _, subject in rows) == sorted(e.subject for e in events)
        assert await dead_letters(js, probe.name) == []
    finally:
        await proxy.cut()


async def test_an_envelope_subject_that_differs_from_the_nats_subject_is_dead_lettered(
    nats_url: str, database_url: str, nc: Any
) -> None:
    js = nc.jetstream()
    probe = build_probe(nats_url, database_url)
    liar = request(unique("liar"))
    honest = request(unique("honest"))
    async with running(probe):
        await publish(js, probe.subject(unique("other")), liar)
        await publish(js, probe.subject(honest.subject), honest)
        await eventually(lambda: probe.rows(), timeout=20)
        await eventually(probe.settled, timeout=20)
        [letter] = await eventually(lambda: dead_letters(js, probe.name), timeout=20)
    assert [s for _, s in await probe.rows()] == [honest.subject]
    assert "differs from the subject's last token" in letter.reason
    assert json.loads(letter.payload)["id"] == str(liar.id)


async def test_every_request_gets_an_answer_naming_what_is_wrong(
    nats_url: str, database_url: str, nc: Any
) -> None:
    probe = build_probe(nats_url, database_url)
    failing = f"rpc.{probe.name}.boom.v1"

    async def boom(_query: HealthQuery) -> HealthReply:
        raise RuntimeError("handler exploded")

    probe.service.respond(failing, HealthQuery, boom)
    async with running(probe):
        for body in (b"not json", b"[1, 2]"):
            reply = await nc.request(rpc_health(probe.name), body, timeout=5)
            error = ErrorReply.model_validate_json(reply.data).error
            assert error.code == "bad-request"
            assert error.issues, error
        reply = await nc.request(failing, b"{}", timeout=5)
        error = ErrorReply.model_validate_json(reply.data).error
        assert error.code == "internal"
        assert "handler exploded" in error.message
        with pytest.raises(PermanentError, match="handler exploded"):
            await ask(nc, failing, HealthQuery(), HealthReply, timeout=5)
        ok = await ask(nc, rpc_health(probe.name), HealthQuery(), HealthReply, timeout=5)
        assert ok.status == "ok"


async def test_a_dead_letter_replayed_is_handled_once_and_leaves_the_dead_letters(
    nats_url: str, database_url: str, nc: Any
) -> None:
    js = nc.jetstream()
    probe = build_probe(nats_url, database_url, max_deliver=2)
    poison = request(unique("replayed"))
    broken = True
    probe.fail = lambda item: broken and item.event.id == poison.id
    async with running(probe):
        await publish(js, probe.subject(poison.subject), poison)
        [letter] = await eventually(lambda: dead_letters(js, probe.name), timeout=30)
        assert letter.reason.startswith("gave up after 2 deliveries")
        assert letter.original_subject == probe.subject(poison.subject)
        assert await probe.rows() == []

        broken = False  # the bug is fixed: replay
        await deadletters.replay(js, letter.seq)
        rows = await eventually(lambda: probe.rows(), timeout=30)
        assert rows == [(poison.id, poison.subject)]
        assert await dead_letters(js, probe.name) == []
        with pytest.raises(LookupError):
            await deadletters.get(js, letter.seq)
        # A second replay of the same event (say, from an older copy) is skipped by the inbox.
        await publish(js, probe.subject(poison.subject), poison, msg_id=unique("again"))
        await eventually(probe.settled, timeout=30)
        assert await probe.rows() == [(poison.id, poison.subject)]


@pytest.mark.parametrize("arrival", ["in separate batches", "in one batch"])
async def test_an_event_id_reused_for_another_content_is_dead_lettered_not_skipped(
    nats_url: str, database_url: str, nc: Any, arrival: str
) -> None:
    js = nc.jetstream()
    probe = build_probe(nats_url, database_url)
    original = request(unique("first"))
    # Same event id, another workload: not a redelivery.
    impostor = request(unique("second")).model_copy(update={"id": original.id})

    async def send_impostor() -> None:
        await publish(js, probe.subject(impostor.subject), impostor, msg_id=unique("m"))

    if arrival == "in one batch":
        await publish(js, probe.subject(original.subject), original)
        await send_impostor()
    async with running(probe):
        if arrival == "in separate batches":
            await publish(js, probe.subject(original.subject), original)
            await eventually(lambda: probe.rows(), timeout=20)
            await send_impostor()
        [letter] = await eventually(lambda: dead_letters(js, probe.name), timeout=20)
        await eventually(probe.settled, timeout=20)
        assert await probe.rows() == [(original.id, original.subject)]
    assert "already used for another content" in letter.reason
    assert letter.original_subject == probe.subject(impostor.subject)
