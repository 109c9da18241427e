"""The api service of the running suite, as an HTTP client with a bearer token."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx

from tests.e2e.conftest import Cli


def bearer_token(cli: Cli, email: str) -> str:
    """The caller's token, as `berth token` prints it once logged in from the development
    issuer."""
    done = cli.as_user(email).run("token")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def client(base_url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=60)


def wait_for_phase(
    api: httpx.Client, workload_id: str, phases: set[str], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = api.get(f"/api/v1/workloads/{workload_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["phase"] in phases:
            return body
        time.sleep(0.2)
    raise AssertionError(f"{workload_id} never reached {phases}; last: {body}")


def live_events(stream: httpx.Response, connected: threading.Event) -> Iterator[dict[str, Any]]:
    """The events of a Server-Sent Events response, without its snapshots; ``connected`` is
    set at its first line (the server writes one once it has subscribed)."""
    kind = ""
    for line in stream.iter_lines():
        connected.set()
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: ") and kind != "snapshot":
            yield json.loads(line.removeprefix("data: "))
