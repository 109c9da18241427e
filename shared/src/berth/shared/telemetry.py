"""Tracing: one trace per workload, across every service.

Spans go to an OTLP collector when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, and (unless disabled) to
the TELEMETRY stream, one subject per trace, so ``berth trace`` can show a workload's span tree with
nothing but NATS. Trace context travels in NATS headers (W3C ``traceparent``/``tracestate``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from berth.contracts.subjects import TELEMETRY_SPANS, stream_for

log = logging.getLogger(__name__)


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    assert ctx is not None
    return {
        "traceId": format(ctx.trace_id, "032x"),
        "spanId": format(ctx.span_id, "016x"),
        "parentId": format(span.parent.span_id, "016x") if span.parent else None,
        "name": span.name,
        "service": (span.resource.attributes.get("service.name") if span.resource else None),
        "kind": span.kind.name,
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict((span.attributes or {}).items()),
    }


class NatsSpanExporter(SpanExporter):
    """Publishes finished spans to ``telemetry.spans.v1.<trace id>``: each flush of the batch
    processor becomes one message per trace it holds (every span of that trace in the flush).

    The SDK calls ``export`` from its own worker thread. The whole flush is handed to the event
    loop that owns the NATS connection at once, and published there in one pass: a hand-off per
    message would wake the loop (a write to its self-pipe) and start a task for every trace.
    Spans are best effort: a lost span never blocks a workload.
    """

    def __init__(self, nc: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._nc = nc
        self._loop = loop
        self._pending: set[asyncio.Future[None]] = set()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for span in spans:
            record = span_to_dict(span)
            by_trace[record["traceId"]].append(record)
        messages = [
            (f"{TELEMETRY_SPANS}.{trace_id}", json.dumps(records, default=str).encode())
            for trace_id, records in by_trace.items()
        ]
        if not messages:
            return SpanExportResult.SUCCESS
        try:
            self._loop.call_soon_threadsafe(self._publish, messages)
        except RuntimeError:  # loop closed during shutdown
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _publish(self, messages: list[tuple[str, bytes]]) -> None:
        if self._nc.is_connected:
            task = asyncio.ensure_future(self._publish_all(messages))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _publish_all(self, messages: list[tuple[str, bytes]]) -> None:
        # Core publishes only queue bytes for the client's flusher: the whole flush leaves in a
        # few socket writes.
        try:
            for subject, payload in messages:
                await self._nc.publish(subject, payload)
        except Exception as exc:  # the connection went away: the rest of the flush is lost
            log.debug("span export: %d traces not published (%s)", len(messages), exc)

    def shutdown(self) -> None:
        pass


def setup_tracing(
    service_name: str,
    *,
    otlp_endpoint: str | None = None,
    nats_client: Any | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces"))
        )
    if nats_client is not None:
        provider.add_span_processor(
            nats_span_processor(nats_client, loop or asyncio.get_running_loop())
        )
    return provider


# Spans waiting for the exporter. The SDK's default (2048, one export batch) drops every span
# made while a full batch is still being published: a burst of workloads lost parts of their
# traces. Bounded all the same, so that memory stays bounded if NATS is slow.
SPAN_QUEUE = 16384


def nats_span_processor(nc: Any, loop: asyncio.AbstractEventLoop) -> BatchSpanProcessor:
    """Finished spans to the TELEMETRY stream, a flush every 200 ms (or every 2048 spans)."""
    return BatchSpanProcessor(
        NatsSpanExporter(nc, loop),
        max_queue_size=SPAN_QUEUE,
        schedule_delay_millis=200,
        max_export_batch_size=2048,
    )


def inject(context: Context | None = None) -> dict[str, str]:
    """W3C trace headers for the given (or current) context."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return carrier


def extract(headers: Mapping[str, str] | None) -> Context:
    return propagate.extract(dict(headers or {}))


def context_of(span: trace.Span) -> Context:
    return trace.set_span_in_context(span)


def trace_id_of(span: trace.Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


async def read_trace(js: JetStreamContext, trace_id: str) -> list[dict[str, Any]]:
    """Every recorded span of one trace, as exported here, read back from the TELEMETRY stream.

    Message by message with the stream's get API, which is all a UI may use there: a consumer
    could deliver the stream's messages to any subject."""
    subject = f"{TELEMETRY_SPANS}.{trace_id}"
    spans: list[dict[str, Any]] = []
    seq = 1
    while True:
        try:
            msg = await js.get_msg(stream_for(TELEMETRY_SPANS), seq=seq, subject=subject, next=True)
        except NotFoundError:
            return spans
        spans.extend(json.loads(msg.data or b"[]"))
        seq = (msg.seq or seq) + 1
