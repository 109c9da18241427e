"""Adapter: project look-ups answered by the catalog service over NATS request-reply."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from opentelemetry.trace import Span

from berth.contracts.queries import (
    ProjectInfo,
    ProjectLookupItem,
    ProjectLookupReply,
    ProjectLookupRequest,
)
from berth.contracts.subjects import RPC_CATALOG_PROJECTS_LOOKUP
from berth.shared.bus import ask
from berth.shared.telemetry import context_of, inject


class ProjectDirectory(Protocol):
    async def lookup(self, requests: Sequence[tuple[str, Span]]) -> dict[str, ProjectInfo]: ...


class CatalogClient:
    """One request per batch; each item carries its workload's trace context."""

    def __init__(self, nc: Any, *, timeout: float) -> None:
        self._nc = nc
        self._timeout = timeout

    async def lookup(self, requests: Sequence[tuple[str, Span]]) -> dict[str, ProjectInfo]:
        if not requests:
            return {}
        body = ProjectLookupRequest(
            items=[
                ProjectLookupItem(
                    project=project, traceparent=inject(context_of(span)).get("traceparent")
                )
                for project, span in requests
            ]
        )
        reply = await ask(
            self._nc, RPC_CATALOG_PROJECTS_LOOKUP, body, ProjectLookupReply, timeout=self._timeout
        )
        return reply.projects
