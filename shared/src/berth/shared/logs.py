"""Service logs: one JSON object per line, with the workload, event and trace they are about.

Fields: ``time`` (UTC, ISO 8601), ``level``, ``service``, ``logger``, ``message``, and when known
``workload_id``, ``event_id``, ``trace_id`` (given with ``extra={...}``, the trace id also taken
from the current span), ``exception`` (the traceback, once). Terminal colour codes that a library
puts into a message are removed: log files are for reading and for tools.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CONTEXT_FIELDS = ("workload_id", "event_id", "trace_id")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": strip_ansi(record.getMessage()),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value:
                out[key] = str(value)
        if "trace_id" not in out:
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                out["trace_id"] = format(context.trace_id, "032x")
        if record.exc_info:
            out["exception"] = strip_ansi(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exception"] = strip_ansi(record.exc_text)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(service: str, level: str = "INFO") -> None:
    """JSON lines on stderr for every logger of the process (libraries included)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # FastStream's own logger has a colourizing handler of its own: use ours instead.
    faststream = logging.getLogger("faststream")
    for existing in list(faststream.handlers):
        faststream.removeHandler(existing)
    faststream.propagate = True
