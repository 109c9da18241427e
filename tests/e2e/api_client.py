"""The api service of the running suite, as an HTTP client with a bearer token."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import httpx2 as httpx
import jwt

from tests.e2e.conftest import BERTH, Cli


def bearer_token(cli: Cli, email: str) -> str:
    """The caller's token: `berth token` where the installation issues tokens; else a token the
    gateway can read the caller from (services that do not verify tokens ignore it)."""
    for args, env in ((("token", "--as", email), {}), (("token",), {"BERTH_USER": email})):
        done = subprocess.run(
            [BERTH, *args], env={**cli.env, **env}, capture_output=True, text=True, timeout=60
        )
        if done.returncode == 0 and done.stdout.strip().count(".") == 2:
            return done.stdout.strip()
    return jwt.encode({"sub": email, "email": email}, "unverified-" * 4, "HS256")


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
