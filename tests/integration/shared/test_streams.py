"""The stream declarations every process makes at start, and the server-side duplicate drop the
outbox relies on."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from nats.js.api import StorageType
from nats.js.errors import NoStreamResponseError

from berth.contracts.events import WorkloadActionDeniedV1
from berth.contracts.registry import known_subjects
from berth.contracts.subjects import STREAMS
from berth.shared.bus import DAY, DUPLICATE_WINDOW_SECONDS, StreamRetention, ensure_streams
from tests.integration.shared.helpers import stored, unique


async def test_declaring_the_streams_again_is_harmless_and_gives_the_declared_config(
    nc: Any,
) -> None:
    js = nc.jetstream()
    before = {name: (await js.stream_info(name)).state.messages for name in STREAMS}
    await ensure_streams(js)
    await ensure_streams(js)

    for name in STREAMS:
        info = await js.stream_info(name)
        assert info.config.subjects == known_subjects(name)
        assert info.config.duplicate_window == DUPLICATE_WINDOW_SECONDS == 600
        assert info.config.storage == StorageType.FILE
        # Declaring never recreates a stream: what it holds stays.
        assert info.state.messages >= before[name]


async def test_declaring_the_streams_restores_a_config_that_drifted(nc: Any) -> None:
    js = nc.jetstream()
    drifted = dataclasses.replace((await js.stream_info("CATALOG")).config, duplicate_window=5)
    await js.update_stream(drifted)
    try:
        assert (await js.stream_info("CATALOG")).config.duplicate_window == 5
        await ensure_streams(js)
        assert (await js.stream_info("CATALOG")).config.duplicate_window == 600
    finally:
        await ensure_streams(js)


async def test_the_server_drops_a_copy_with_the_same_msg_id_within_the_window(nc: Any) -> None:
    js = nc.jetstream()
    subject = f"deadletter.{unique('dedup')}.v1.probe"
    msg_id = unique("msg")

    first = await js.publish(subject, b"first", headers={"Nats-Msg-Id": msg_id})
    copy = await js.publish(subject, b"copy", headers={"Nats-Msg-Id": msg_id})
    other = await js.publish(subject, b"other", headers={"Nats-Msg-Id": unique("msg")})

    assert not first.duplicate
    assert copy.duplicate is True
    assert copy.seq == first.seq
    assert not other.duplicate
    assert other.seq > first.seq
    assert [m.data for m in await stored(js, subject)] == [b"first", b"other"]


async def test_a_stream_holds_only_the_subjects_of_known_event_versions(nc: Any) -> None:
    """An unknown version (or event) is refused at once: nothing would ever consume it."""
    js = nc.jetstream()
    assert known_subjects("SUBMISSION") == [
        "submission.received.v1.*",
        "submission.rejected.v1.*",
        "submission.requested.v1.*",
    ]
    # No berth service consumes action-denied events: storing one here disturbs nothing.
    known = WorkloadActionDeniedV1.nats_subject(unique("w"))
    for subject in (
        known.replace(".v1.", ".v2."),
        "workload.bogus.v1.x",
        "workload.action-denied.v1.x.y",
    ):
        with pytest.raises(NoStreamResponseError):
            await js.publish(subject, b"{}", timeout=2)
    ack = await js.publish(known, b"{}", timeout=2)
    assert ack.stream == "WORKLOAD"


async def test_declared_retention_reaches_the_server(nc: Any) -> None:
    js = nc.jetstream()
    retention = StreamRetention(max_age_days=3, telemetry_max_bytes=256 << 20)
    try:
        await ensure_streams(js, retention=retention)
        assert (await js.stream_info("WORKLOAD")).config.max_age == 3 * DAY
        assert (await js.stream_info("TELEMETRY")).config.max_bytes == 256 << 20
    finally:
        await ensure_streams(js)
    assert (await js.stream_info("WORKLOAD")).config.max_age == 30 * DAY
