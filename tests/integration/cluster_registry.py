"""Registering a cluster with intake the way cluster-sync announces one, for tests that run
intake without cluster-sync and an agent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from berth.contracts.envelope import Actor
from berth.contracts.events import ClusterConfig, ClusterRecord, ClusterUpdatedV1
from berth.contracts.queries import ClusterListQuery, ClusterListReply
from berth.contracts.subjects import RPC_CLUSTERS_LIST
from tests.identity import ask, publish
from tests.integration.shared.helpers import eventually


async def listed_clusters(nc: Any) -> set[str]:
    try:
        reply = await ask(nc, RPC_CLUSTERS_LIST, ClusterListQuery(), ClusterListReply, timeout=2)
    except Exception:
        return set()
    return {c.clusterId for c in reply.clusters}


async def register(nc: Any, cluster_id: str) -> None:
    """Announce ``cluster_id`` as cluster-sync would, and wait until intake knows it."""
    event = ClusterUpdatedV1(
        # As cluster-sync: consumers dead-letter an event from a source not declared to emit it.
        source="/berth/cluster-sync",
        subject=cluster_id,
        actor=Actor.system("cluster-sync"),
        data=ClusterRecord(
            clusterId=cluster_id,
            backend="simulated",
            config=ClusterConfig(),
            nodePools=["default"],
            gpus=16,
            reportedAt=datetime.now(UTC),
        ),
    )
    await publish(nc.jetstream(), event)

    async def known() -> bool:
        return cluster_id in await listed_clusters(nc)

    # Beyond one ack_wait (30 s): an intake stopped by the previous test may have left a long
    # poll open on the shared durable, and a message delivered to it comes back only then.
    await eventually(known, timeout=90)
