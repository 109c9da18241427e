"""Everything the catalog listens to: subjects, queue groups, delivery choices."""

from __future__ import annotations

from functools import partial

from berth.catalog import handlers
from berth.contracts.events import CatalogAssetChangedV1
from berth.contracts.queries import ProjectLookupRequest
from berth.contracts.subjects import RPC_CATALOG_PROJECTS_LOOKUP
from berth.shared.service import Service


def register(service: Service) -> None:
    service.respond(
        RPC_CATALOG_PROJECTS_LOOKUP,
        ProjectLookupRequest,
        partial(handlers.lookup_projects, engine=service.engine, tracer=service.tracer),
    )
    service.publishes(CatalogAssetChangedV1)
