"""Adapter: project and asset look-ups answered by the catalog service over NATS request-reply,
with intake's own projection of the catalog as the fallback when the catalog does not answer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from opentelemetry.trace import Span
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.contracts.catalog import AssetListReply, AssetRef, AssetResolveRequest, AssetView
from berth.contracts.queries import (
    ProjectInfo,
    ProjectLookupItem,
    ProjectLookupReply,
    ProjectLookupRequest,
)
from berth.contracts.subjects import RPC_CATALOG_ASSETS_RESOLVE, RPC_CATALOG_PROJECTS_LOOKUP
from berth.intake import projection
from berth.shared.bus import ask
from berth.shared.errors import TransientError
from berth.shared.telemetry import context_of, inject

log = logging.getLogger(__name__)


class ProjectDirectory(Protocol):
    async def lookup(self, requests: Sequence[tuple[str, Span]]) -> dict[str, ProjectInfo]: ...

    async def assets(self, refs: Sequence[AssetRef], span: Span) -> list[AssetView]: ...


class CatalogClient:
    """One request per batch; each item carries its workload's trace context."""

    def __init__(self, nc: Callable[[], Any], *, timeout: float) -> None:
        # A getter: the service's NATS connection only exists once the service has started.
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
            self._nc(), RPC_CATALOG_PROJECTS_LOOKUP, body, ProjectLookupReply, timeout=self._timeout
        )
        return reply.projects

    async def assets(self, refs: Sequence[AssetRef], span: Span) -> list[AssetView]:
        if not refs:
            return []
        body = AssetResolveRequest(
            refs=list(refs), traceparent=inject(context_of(span)).get("traceparent")
        )
        reply = await ask(
            self._nc(), RPC_CATALOG_ASSETS_RESOLVE, body, AssetListReply, timeout=self._timeout
        )
        return reply.assets


class ResilientCatalog:
    """The catalog service first (its spans join the workload's trace); intake's projection
    of the catalog when it does not answer, so that submissions keep flowing."""

    def __init__(self, primary: ProjectDirectory, engine: AsyncEngine) -> None:
        self._primary = primary
        self._engine = engine

    async def lookup(self, requests: Sequence[tuple[str, Span]]) -> dict[str, ProjectInfo]:
        try:
            return await self._primary.lookup(requests)
        except TransientError as exc:
            log.warning("catalog unavailable (%s): projects from the projection", exc)
            for _, span in requests:
                span.set_attribute("berth.catalog.source", "projection")
            async with self._engine.connect() as conn:
                return await projection.projects(conn, [p for p, _ in requests])

    async def assets(self, refs: Sequence[AssetRef], span: Span) -> list[AssetView]:
        try:
            return await self._primary.assets(refs, span)
        except TransientError as exc:
            log.warning("catalog unavailable (%s): assets from the projection", exc)
            span.set_attribute("berth.catalog.source", "projection")
            async with self._engine.connect() as conn:
                return await projection.assets(conn, refs)
