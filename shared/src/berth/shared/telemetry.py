"""Tracing: one trace per workload, across every service.

Spans go to an OTLP collector when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, and (unless disabled) to
the TELEMETRY stream, one subject per trace, so ``berth trace`` can show a workload's span tree with
nothing but NATS. Trace context travels in NATS headers (W3C ``traceparent``/``tracestate``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic_core import to_json

from berth.contracts.subjects import TELEMETRY_SPANS, stream_for

log = logging.getLogger(__name__)


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    assert ctx is not None
    parent = span.parent
    resource = span.resource
    attributes = span.attributes
    return {
        "traceId": f"{ctx.trace_id:032x}",
        "spanId": f"{ctx.span_id:016x}",
        "parentId": f"{parent.span_id:016x}" if parent else None,
        "name": span.name,
        "service": resource.attributes.get("service.name") if resource else None,
        "kind": span.kind.name,
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        # A mapping proxy's copy is its mapping's: the SDK's attributes copy their dict at once,
        # where dict(...) would go through them key by key.
        "attributes": (
            attributes.copy()
            if isinstance(attributes, MappingProxyType)
            else dict(attributes or {})
        ),
    }


def encode_spans(records: list[dict[str, Any]]) -> bytes:
    """JSON of exported spans, as ``read_trace`` reads it; a value JSON has no form for is
    written as its str()."""
    return to_json(records, fallback=str)


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
        # This runs in the SDK's worker thread, holding the GIL the event loop needs: as little
        # Python per span as possible, the encoding in one call per trace.
        by_trace: dict[str, list[dict[str, Any]]] = {}
        for span in spans:
            record = span_to_dict(span)
            records = by_trace.get(record["traceId"])
            if records is None:
                by_trace[record["traceId"]] = [record]
            else:
                records.append(record)
        messages = [
            (f"{TELEMETRY_SPANS}.{trace_id}", encode_spans(records))
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
    # Every span is recorded (no sampling): a trace must show a workload's whole tree, whatever
    # the flags of the context it continues. Deciding so up front also spares the parent-based
    # sampler's look-ups at every span.
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}), sampler=ALWAYS_ON
    )
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


# Trace context travels as W3C trace context only (berth sets no baggage): the propagator is
# used directly, not through the global composite one (trace context and baggage), and reads
# the message's headers as they are, without a copy.
_W3C = TraceContextTextMapPropagator()


def inject(context: Context | None = None) -> dict[str, str]:
    """W3C trace headers for the given (or current) context."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=context)
    return carrier


def extract(headers: Mapping[str, str] | None) -> Context:
    """The context W3C trace headers continue (an empty one without them)."""
    return _W3C.extract(headers) if headers else Context()


def context_of(span: trace.Span) -> Context:
    return trace.set_span_in_context(span)


def start_consumer_span(
    tracer: trace.Tracer, name: str, parent: Context, attributes: dict[str, str]
) -> trace.Span:
    """The CONSUMER span a consumed message is handled in."""
    return tracer.start_span(name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes)


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
