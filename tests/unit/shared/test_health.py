"""The probes' endpoints and the settings a Kubernetes deployment relies on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from berth.shared.bus import stream_configs
from berth.shared.health import HealthServer
from berth.shared.settings import Settings

pytestmark = pytest.mark.unit


async def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def test_liveness_and_readiness_answer_for_this_process() -> None:
    state = {"ready": False}

    async def ready() -> tuple[bool, dict[str, Any]]:
        if state["ready"]:
            return True, {"status": "ok"}
        return False, {"status": "starting"}

    server = HealthServer(0, ready, host="127.0.0.1")
    await server.start()
    try:
        assert await _get(server.port, "/livez") == (200, {"status": "alive"})
        assert await _get(server.port, "/readyz") == (503, {"status": "starting"})
        state["ready"] = True
        assert await _get(server.port, "/readyz") == (200, {"status": "ok"})
        assert (await _get(server.port, "/other"))[0] == 404
    finally:
        await server.stop()


async def test_a_failing_check_is_unready_not_an_error() -> None:
    async def broken() -> tuple[bool, dict[str, Any]]:
        raise ConnectionRefusedError

    server = HealthServer(0, broken, host="127.0.0.1")
    await server.start()
    try:
        status, body = await _get(server.port, "/readyz")
        assert (status, body["reason"]) == (503, "ConnectionRefusedError")
    finally:
        await server.stop()


def test_a_plain_postgresql_uri_is_read_through_asyncpg(monkeypatch: pytest.MonkeyPatch) -> None:
    # CloudNativePG's application Secret holds the URI as "postgresql://user:pass@host/db".
    monkeypatch.setenv("BERTH_DATABASE_URL", "postgresql://app:p%40ss@db-rw.berth:5432/app")
    assert Settings().database_url == "postgresql+asyncpg://app:p%40ss@db-rw.berth:5432/app"
    monkeypatch.setenv("BERTH_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    assert Settings().database_url == "postgresql+asyncpg://u@h/db"


def test_streams_are_declared_with_the_replicas_asked_for() -> None:
    assert {c.num_replicas for c in stream_configs()} == {1}
    assert {c.num_replicas for c in stream_configs(3)} == {3}
