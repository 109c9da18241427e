""" "Did you mean": close names for a project, workload or asset that does not exist."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from berth.cli.client import BerthClient


def closest(name: str, candidates: list[str]) -> str:
    """`` (did you mean "a" or "b"?)``, or "" when nothing is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return ""
    quoted = [f'"{c}"' for c in close]
    words = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f" (did you mean {words}?)"


async def asset_names(client: BerthClient, kind: str) -> list[str]:
    from berth.contracts.catalog import AssetListReply, AssetListRequest
    from berth.contracts.subjects import RPC_CATALOG_ASSETS_LIST

    reply: AssetListReply = await client.request(
        RPC_CATALOG_ASSETS_LIST,
        AssetListRequest(kind=kind),  # type: ignore[arg-type]
        AssetListReply,
    )
    return [a.name for a in reply.assets]


async def project_hint(client: BerthClient, project: str) -> str:
    return closest(project, await asset_names(client, "project"))


async def project_exists(client: BerthClient, project: str) -> bool:
    return project in await asset_names(client, "project")


async def workload_hint(client: BerthClient, project: str, name: str) -> str:
    from berth.contracts.queries import WorkloadQuery

    rows = await client.workloads(WorkloadQuery(project=project, limit=1000))
    return closest(name, [r.name for r in rows])
