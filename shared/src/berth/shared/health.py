"""HTTP health endpoints for a container orchestrator's probes (``BERTH_HEALTH_PORT``).

The health rpc (``rpc.health.<service>.v1``) is answered by any replica of a service, so a
probe that asked it could be answered by another pod than the one probed. These endpoints
answer for this process only, from the same check:

- ``GET /livez``: 200 while the event loop runs (an answer at all is the proof);
- ``GET /readyz``: 200 with the health reply's JSON once the service has started, is connected
  to NATS and its check reads the database; 503 with the reason otherwise. A degraded service
  (outbox stuck, recent dead letters) is still ready: another replica would not do better, and
  ``berth status`` says why.

Plain asyncio rather than a web framework: two fixed answers do not need one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

# (ready, body): what /readyz answers.
ReadyCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]

READ_TIMEOUT_SECONDS = 2.0
CHECK_TIMEOUT_SECONDS = 3.0


class HealthServer:
    def __init__(self, port: int, ready: ReadyCheck, *, host: str = "0.0.0.0") -> None:
        self.port = port
        self.host = host
        self._ready = ready
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sockets = self._server.sockets or ()
        if sockets and self.port == 0:
            self.port = int(sockets[0].getsockname()[1])
        log.info("health endpoints on port %d (/livez, /readyz)", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), READ_TIMEOUT_SECONDS)
            parts = request.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
            if path == "/livez":
                status, body = 200, {"status": "alive"}
            elif path == "/readyz":
                try:
                    ready, body = await asyncio.wait_for(self._ready(), CHECK_TIMEOUT_SECONDS)
                except Exception as exc:
                    ready, body = False, {"status": "unready", "reason": type(exc).__name__}
                status = 200 if ready else 503
            else:
                status, body = 404, {"status": "not found"}
            payload = json.dumps(body, default=str).encode()
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
