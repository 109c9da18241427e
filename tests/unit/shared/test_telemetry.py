"""Trace context in and out of messages, consumer spans and their export, as the runtime does
them on every message."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry import propagate
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, get_current_span

from berth.shared.telemetry import (
    context_of,
    encode_spans,
    extract,
    setup_tracing,
    span_to_dict,
    start_consumer_span,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Collect(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def _provider() -> tuple[TracerProvider, Collect]:
    provider = setup_tracing("probe")
    collected = Collect()
    provider.add_span_processor(SimpleSpanProcessor(collected))
    return provider, collected


def _parent(headers: dict[str, str] | None) -> tuple[int, int, int, bool]:
    ctx = get_current_span(extract(headers)).get_span_context()
    return ctx.trace_id, ctx.span_id, int(ctx.trace_flags), ctx.is_remote


def test_extract_reads_what_the_w3c_propagator_reads() -> None:
    cases: list[dict[str, str] | None] = [
        None,
        {},
        {"Nats-Msg-Id": "x"},
        {"traceparent": f"00-{TRACE}-{PARENT}-01"},
        {"traceparent": f"00-{TRACE}-{PARENT}-00"},
        {"traceparent": f"  00-{TRACE}-{PARENT}-01"},
        {"traceparent": f"01-{TRACE}-{PARENT}-01-later"},
        {"traceparent": f"00-{TRACE}-{PARENT}-01-trailing"},
        {"traceparent": f"ff-{TRACE}-{PARENT}-01"},
        {"traceparent": f"00-{'0' * 32}-{PARENT}-01"},
        {"traceparent": f"00-{TRACE}-{'0' * 16}-01"},
        {"traceparent": f"00-{TRACE.upper()}-{PARENT}-01"},
        {"traceparent": "garbage"},
        {"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "vendor=value"},
    ]
    for headers in cases:
        expected = get_current_span(propagate.extract(dict(headers or {}))).get_span_context()
        assert _parent(headers) == (
            expected.trace_id,
            expected.span_id,
            int(expected.trace_flags),
            expected.is_remote,
        ), headers
    state = get_current_span(
        extract({"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "vendor=value"})
    ).get_span_context()
    assert state.trace_state.to_header() == "vendor=value"


def test_a_consumer_span_continues_the_senders_trace_with_its_attributes() -> None:
    provider, collected = _provider()
    tracer = provider.get_tracer("test")
    attributes = {"messaging.system": "nats", "berth.subject": "w-1"}
    span = start_consumer_span(
        tracer, "handle", extract({"traceparent": f"00-{TRACE}-{PARENT}-01"}), attributes
    )
    span.set_attribute("berth.duplicate", True)
    span.end()
    [done] = collected.spans
    assert done.name == "handle"
    assert done.kind is SpanKind.CONSUMER
    assert done.parent is not None and f"{done.parent.span_id:016x}" == PARENT
    assert f"{done.context.trace_id:032x}" == TRACE
    assert done.context.trace_flags.sampled
    assert dict(done.attributes or {}) == {**attributes, "berth.duplicate": True}


def test_every_span_is_recorded_even_under_an_unsampled_parent() -> None:
    provider, collected = _provider()
    span = start_consumer_span(
        provider.get_tracer("test"),
        "handle",
        extract({"traceparent": f"00-{TRACE}-{PARENT}-00"}),
        {},
    )
    span.end()
    assert [s.name for s in collected.spans] == ["handle"]


def test_exported_spans_read_back_as_before() -> None:
    provider, collected = _provider()
    tracer = provider.get_tracer("test")
    parent = tracer.start_span("parent")
    child = start_consumer_span(tracer, "child", context_of(parent), {"k": "v"})
    child.set_attribute("list", ["a", "b"])
    child.set_attribute("n", 3)
    child.end()
    parent.end()
    records = [span_to_dict(s) for s in collected.spans]
    decoded = json.loads(encode_spans(records))
    assert decoded == json.loads(json.dumps(records, default=str))
    by_name = {r["name"]: r for r in decoded}
    assert by_name["child"]["parentId"] == by_name["parent"]["spanId"]
    assert by_name["child"]["attributes"] == {"k": "v", "list": ["a", "b"], "n": 3}
    assert by_name["child"]["service"] == "probe"
    assert by_name["child"]["kind"] == "CONSUMER"
    assert by_name["parent"]["parentId"] is None


def test_span_to_dict_takes_plain_mappings() -> None:
    context = get_current_span(
        extract({"traceparent": f"00-{TRACE}-{PARENT}-01"})
    ).get_span_context()
    span = ReadableSpan(
        name="s",
        context=context,
        attributes={"a": "b"},
        resource=Resource.create({"service.name": "x"}),
    )
    assert span_to_dict(span)["attributes"] == {"a": "b"}
