"""``berth cluster list``: the registered clusters, as intake knows them (the clusters a
submission may name)."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from berth.cli.client import BerthClient
from berth.cli.common import NatsOpt, OutputOpt, console, with_client
from berth.contracts.queries import ClusterListQuery, ClusterListReply
from berth.contracts.subjects import RPC_CLUSTERS_LIST


def register(cluster_app: typer.Typer) -> None:
    @cluster_app.command("list")
    def cluster_list(out: OutputOpt = "table", nats_url: NatsOpt = None) -> None:
        """The registered clusters: backend, node pools, GPUs, settings, last report."""

        async def go(client: BerthClient) -> None:
            reply: ClusterListReply = await client.request(
                RPC_CLUSTERS_LIST, ClusterListQuery(), ClusterListReply
            )
            if out == "json":
                print(json.dumps([c.model_dump(mode="json") for c in reply.clusters], indent=2))
                return
            table = Table("CLUSTER", "BACKEND", "NODE POOLS", "GPUS", "PROTECTION", "REPORTED")
            for c in reply.clusters:
                table.add_row(
                    c.clusterId,
                    c.backend,
                    ", ".join(c.nodePools),
                    str(c.gpus),
                    "on" if c.config.workloadOwnershipProtection else "off",
                    c.reportedAt.strftime("%Y-%m-%d %H:%M:%S"),
                )
            console.print(table)

        with_client(nats_url, None, go)
