"""The inbox's default retention covers everything the streams can still deliver."""

from __future__ import annotations

from datetime import timedelta

from berth.shared.bus import DAY, StreamRetention, stream_configs
from berth.shared.settings import Settings


def test_default_inbox_retention_outlasts_every_stream() -> None:
    retention = timedelta(days=Settings().inbox_retention_days).total_seconds()
    longest = max(float(c.max_age or 0) for c in stream_configs())
    assert longest > 0
    assert retention >= longest


def test_stream_retention_sets_each_streams_limits() -> None:
    retention = StreamRetention(
        max_age_days=14, max_bytes=5 << 30, telemetry_max_age_days=1, telemetry_max_bytes=1 << 28
    )
    configs = {c.name: c for c in stream_configs(retention=retention)}
    telemetry = configs.pop("TELEMETRY")
    assert (telemetry.max_age, telemetry.max_bytes) == (DAY, 1 << 28)
    assert {(c.max_age, c.max_bytes) for c in configs.values()} == {(14 * DAY, 5 << 30)}


def test_default_stream_retention_keeps_events_by_age_and_traces_by_age_and_size() -> None:
    configs = {c.name: c for c in stream_configs()}
    telemetry = configs.pop("TELEMETRY")
    assert (telemetry.max_age, telemetry.max_bytes) == (7 * DAY, 1 << 30)
    assert {(c.max_age, c.max_bytes) for c in configs.values()} == {(30 * DAY, -1)}
