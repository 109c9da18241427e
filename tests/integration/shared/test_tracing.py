"""Trace context crosses the runtime: from the consumed message, through the handler's span, to
the events the handler emits."""

from __future__ import annotations

import json
import secrets
from typing import Any

from opentelemetry.trace import SpanKind

from berth.contracts.subjects import TELEMETRY_SPANS
from tests.integration.shared.helpers import (
    build_probe,
    emitted_subject,
    eventually,
    publish,
    request,
    running,
    stored,
    unique,
)


async def test_the_handling_span_continues_the_senders_trace_and_emitted_events_carry_it(
    nats_url: str, database_url: str, nc: Any
) -> None:
    js = nc.jetstream()
    trace_id, sender_span = secrets.token_hex(16), secrets.token_hex(8)
    event = request(unique("traced"))

    async def handling_span() -> dict[str, Any] | None:
        for msg in await stored(js, f"{TELEMETRY_SPANS}.{trace_id}"):
            for span in json.loads(msg.data):
                if span["attributes"].get("messaging.message.id") == str(event.id):
                    return dict(span)
        return None

    async with running(build_probe(nats_url, database_url)) as probe:
        await publish(
            js,
            probe.subject(event.subject),
            event,
            headers={"traceparent": f"00-{trace_id}-{sender_span}-01"},
        )
        span = await eventually(handling_span, interval=0.1)
        await eventually(probe.outbox_drained)

    assert span["traceId"] == trace_id
    assert span["parentId"] == sender_span
    assert span["kind"] == SpanKind.CONSUMER.name
    assert span["service"] == probe.name
    assert span["status"] != "ERROR"

    [out] = await stored(js, emitted_subject(event.subject))
    assert out.headers is not None
    version, out_trace, out_parent, _flags = out.headers["traceparent"].split("-")
    assert (version, out_trace) == ("00", trace_id)
    # The emitted event's parent is the span that handled its cause, not the sender's span.
    assert out_parent == span["spanId"]
    assert out.headers["Nats-Msg-Id"] == str(json.loads(out.data)["id"])
