"""A running service's probe endpoints (BERTH_HEALTH_PORT): the health rpc's check, answered
for this process."""

from __future__ import annotations

import socket

import pytest

from tests.integration.shared.helpers import build_probe, running
from tests.unit.shared.test_health import _get

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_started_service_is_live_and_ready(nats_url: str, database_url: str) -> None:
    port = _free_port()
    probe = build_probe(nats_url, database_url, health_port=port)
    async with running(probe):
        assert await _get(port, "/livez") == (200, {"status": "alive"})
        status, body = await _get(port, "/readyz")
        assert status == 200
        assert body["service"] == probe.name
        assert body["status"] == "ok"
    with pytest.raises(OSError):
        await _get(port, "/livez")
