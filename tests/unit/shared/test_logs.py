"""Service logs are JSON lines that name what they are about, without colour codes."""

from __future__ import annotations

import json
import logging

import pytest

from berth.shared.errors import TransientError, is_transient
from berth.shared.logs import JsonFormatter

pytestmark = pytest.mark.unit


def record(message: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("berth.test", logging.WARNING, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_one_json_object_per_record_with_the_workload_it_is_about() -> None:
    line = JsonFormatter("intake").format(
        record("\x1b[31mrejected\x1b[0m", workload_id="w1", event_id="e1")
    )
    out = json.loads(line)
    assert "\n" not in line
    assert out["message"] == "rejected"
    assert (out["service"], out["level"], out["logger"]) == ("intake", "WARNING", "berth.test")
    assert (out["workload_id"], out["event_id"]) == ("w1", "e1")
    assert out["time"].endswith("+00:00")


def test_the_traceback_is_one_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = record("failed")
        rec.exc_info = sys.exc_info()
    out = json.loads(JsonFormatter("policy").format(rec))
    assert "ValueError: boom" in out["exception"]


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (TimeoutError(), True),
        (TransientError("down"), True),
        (FileNotFoundError("x"), False),
        (FileNotFoundError(2, "No such file or directory", "/etc/berth/inventory.yaml"), False),
        # What connecting to the unix socket of a PostgreSQL that is down raises.
        (FileNotFoundError(2, "No such file or directory"), True),
        (ValueError("bad"), False),
        (KeyError("k"), False),
    ],
)
def test_outages_are_told_from_failures(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_an_outage_is_found_behind_the_error_it_caused() -> None:
    try:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError as cause:
            raise RuntimeError("query failed") from cause
    except RuntimeError as exc:
        assert is_transient(exc)
