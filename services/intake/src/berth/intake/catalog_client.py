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
from berth.shared.errors import TransientError
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
        try:
            reply = await self._nc.request(
                RPC_CATALOG_PROJECTS_LOOKUP, body.model_dump_json().encode(), timeout=self._timeout
            )
        except Exception as exc:  # no responders, timeout, connection lost
            raise TransientError(f"catalog unavailable: {exc}") from exc
        return ProjectLookupReply.model_validate_json(reply.data).projects
