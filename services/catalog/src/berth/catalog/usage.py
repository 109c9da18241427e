"""Which workloads use an asset: intake's read model knows (it records the assets each workload
was resolved from, in the transaction that records the workload), so the catalog asks it when
it needs to know, at delete time, instead of following every submission and phase itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from berth.contracts.queries import AssetUsersReply, AssetUsersRequest
from berth.contracts.subjects import RPC_WORKLOADS_USING_ASSETS
from berth.shared.bus import ask

WorkloadUsers = Callable[[Sequence[str]], Awaitable[dict[str, list[str]]]]
"""Per asset id, the live workloads built from it, as ``project/name`` (absent: none). Raises
``TransientError`` or ``PermanentError`` when the answer cannot be had."""


def ask_intake(nc: Callable[[], Any], *, timeout: float) -> WorkloadUsers:
    """The question, over NATS request-reply (``nc``: a getter, since the service's connection
    only exists once it has started)."""

    async def users(asset_ids: Sequence[str]) -> dict[str, list[str]]:
        if not asset_ids:
            return {}
        reply = await ask(
            nc(),
            RPC_WORKLOADS_USING_ASSETS,
            AssetUsersRequest(assetIds=list(asset_ids)),
            AssetUsersReply,
            timeout=timeout,
        )
        return reply.users

    return users


async def no_workloads(asset_ids: Sequence[str]) -> dict[str, list[str]]:  # noqa: ARG001
    """Where no workload can exist (seeding, tests of the asset rules alone)."""
    return {}
