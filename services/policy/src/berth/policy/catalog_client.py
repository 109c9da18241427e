"""Adapter: where a project sits in the organisation tree, asked of the catalog over NATS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from berth.contracts.queries import (
    ProjectInfo,
    ProjectLookupItem,
    ProjectLookupReply,
    ProjectLookupRequest,
)
from berth.contracts.subjects import RPC_CATALOG_PROJECTS_LOOKUP
from berth.shared.bus import ask

ProjectResolver = Callable[[str], Awaitable[ProjectInfo | None]]


class CatalogProjects:
    """Resolves a project through the catalog; the connection exists only once started."""

    def __init__(self, connection: Callable[[], Any], *, timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout

    async def __call__(self, project: str) -> ProjectInfo | None:
        reply = await ask(
            self._connection(),
            RPC_CATALOG_PROJECTS_LOOKUP,
            ProjectLookupRequest(items=[ProjectLookupItem(project=project)]),
            ProjectLookupReply,
            timeout=self._timeout,
        )
        return reply.projects.get(project)
