"""``berth cluster``: the registered clusters (``list``, as intake knows them: the clusters a
submission may name) and their settings (``config get|set``, through cluster-sync)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from berth.cli.common import (
    AsOpt,
    Format,
    NatsOpt,
    OutputOpt,
    as_actor,
    console,
    fail,
    say,
    with_client,
)

if TYPE_CHECKING:
    from datetime import datetime

    from berth.cli.client import BerthClient

ClusterOpt = Annotated[
    str, typer.Option("--cluster", metavar="CLUSTER", help="Cluster id.", show_default=True)
]
ProtectionOpt = Annotated[
    bool | None,
    typer.Option(
        "--ownership-protection/--no-ownership-protection",
        metavar="",
        help="Only a workload's creator may delete, suspend or resume it.",
    ),
]


def register(app: typer.Typer) -> None:
    cluster_app = typer.Typer(
        rich_markup_mode=None, help="Clusters and their settings.", no_args_is_help=True
    )
    cluster_app.command("list")(list_)
    cluster_app.command("describe")(describe)
    config_app = typer.Typer(
        rich_markup_mode=None,
        help="A cluster's settings. `get` reads them back, `set` changes them.",
        invoke_without_command=True,
    )
    config_app.callback()(config)
    config_app.command("get")(config_get)
    config_app.command("set")(config_set)
    cluster_app.add_typer(config_app, name="config")
    app.add_typer(cluster_app, name="cluster")


def list_(out: OutputOpt = "table", nats_url: NatsOpt = None) -> None:
    """List the registered clusters. Connection, backend, node pools, GPUs, protection, last
    report (a cluster whose agent stopped reporting is disconnected)."""

    async def go(client: BerthClient) -> None:
        from berth.cli import output
        from berth.contracts.queries import ClusterListQuery, ClusterListReply
        from berth.contracts.subjects import RPC_CLUSTERS_LIST

        reply: ClusterListReply = await client.request(
            RPC_CLUSTERS_LIST, ClusterListQuery(), ClusterListReply
        )
        heard = await _last_reports(client)
        if out in (Format.json, Format.yaml):
            output.emit([c.model_dump(mode="json") for c in reply.clusters], out)
            return
        if out == Format.name:
            for c in reply.clusters:
                print(c.clusterId)
            return
        wide = out == Format.wide
        columns = ["CLUSTER", "STATE", "BACKEND", "NODE POOLS", "GPUS", "PROTECTION", "REPORTED"]
        grid = output.table(*columns, *(["CAPABILITIES"] if wide else []))
        for c in reply.clusters:
            cells = [
                c.clusterId,
                "connected" if c.connected else "disconnected",
                c.backend,
                ",".join(c.nodePools) or "-",
                str(c.gpus),
                "on" if c.config.workloadOwnershipProtection else "off",
                _reported(heard.get(c.clusterId, c.reportedAt)),
            ]
            if wide:
                cells.append(", ".join(sorted(c.capabilities)) or "-")
            output.row(grid, *cells)
        output.show(console.get(), grid)

    with_client(nats_url, None, go)


async def _last_reports(client: BerthClient) -> dict[str, datetime | None]:
    """Each cluster's last heartbeat, as cluster-sync heard it. Intake's copy of the registry
    changes only when a cluster does (so its time is when it last changed, not when its agent
    last reported); without an answer from cluster-sync the list falls back to that time."""
    from berth.contracts.queries import ClusterQuery, ClusterReply
    from berth.contracts.subjects import RPC_CLUSTERS_GET

    try:
        reply: ClusterReply = await client.request(
            RPC_CLUSTERS_GET, ClusterQuery(), ClusterReply, timeout=3
        )
    except Exception:
        return {}
    return {c.clusterId: c.lastReportAt for c in reply.clusters}


def _reported(when: datetime | None) -> str:
    from berth.cli import output

    return f"{output.age(when)} ago" if when else "never"


def describe(
    cluster: Annotated[str, typer.Argument(metavar="CLUSTER", help="The cluster's id.")],
    out: OutputOpt = "table",
    nats_url: NatsOpt = None,
) -> None:
    """Show a cluster: connection and last report, version, nodes by pool with GPUs used and
    free (asked of its agent), capabilities, and its settings as reported and requested."""

    async def go(client: BerthClient) -> None:

        from berth.cli import output
        from berth.contracts.queries import ClusterQuery, ClusterReply, NodesQuery, NodesReply
        from berth.contracts.subjects import RPC_CLUSTERS_GET, rpc_nodes

        reply: ClusterReply = await client.request(
            RPC_CLUSTERS_GET, ClusterQuery(clusterId=cluster), ClusterReply
        )
        if not reply.clusters:
            raise LookupError(f'no cluster "{cluster}" has reported to cluster-sync')
        info = reply.clusters[0]
        nodes: NodesReply
        try:
            nodes = await client.request(rpc_nodes(cluster), NodesQuery(), NodesReply, timeout=3)
        except Exception as exc:
            nodes = NodesReply(error=f"its agent did not answer ({type(exc).__name__})")
        if out in (Format.json, Format.yaml):
            found = info.model_dump(mode="json")
            found["nodes"] = [n.model_dump(mode="json") for n in nodes.nodes]
            output.emit(found, out)
            return
        if out == Format.name:
            print(info.clusterId)
            return
        con = console.get()
        reported = info.lastReportAt
        heartbeat = f"{output.age(reported)} ago ({reported:%H:%M:%S})" if reported else "never"
        state = "connected" if info.connected else "disconnected"
        con.print(f"{info.clusterId}  ({state}; last report {heartbeat})", markup=False)
        con.print(f"  backend:  {info.backend}", markup=False)
        con.print(f"  version:  {info.config.get('clusterVersion', '-')}", markup=False)
        if nodes.nodes:
            grid = output.table("POOL", "NODE", "READY", "GPUS", "USED", "FREE")
            for n in nodes.nodes:
                output.row(
                    grid,
                    n.nodePool,
                    n.name,
                    "yes" if n.ready else "no",
                    str(n.gpus),
                    f"{n.gpusUsed:g}",
                    f"{max(0.0, n.gpus - n.gpusUsed):g}",
                )
            pools: dict[str, list[float]] = {}
            for n in nodes.nodes:
                total = pools.setdefault(n.nodePool, [0.0, 0.0])
                total[0] += n.gpus
                total[1] += n.gpusUsed
            con.print("  nodes:")
            output.show(con, grid)
            summary = ", ".join(
                f"{pool} {used:g}/{gpus:g} GPUs used" for pool, (gpus, used) in pools.items()
            )
            con.print(f"  pools:    {summary}", markup=False)
        else:
            con.print(f"  nodes:    unknown: {nodes.error or 'none reported'}", markup=False)
        con.print("  capabilities:")
        for line in _outline(info.capabilities, "    "):
            con.print(line, markup=False)
        con.print("  settings (reported / requested):")
        for key in sorted(set(info.config) | set(info.desired)):
            if key in ("capabilities", "nodePools", "gpus"):
                continue
            reported = info.config.get(key)
            if isinstance(reported, Mapping) and reported and key not in info.desired:
                con.print(f"    {key}:", markup=False)
                for line in _outline(reported, "      "):
                    con.print(line, markup=False)
                continue
            requested = f" / {_plain(info.desired[key])}" if key in info.desired else ""
            con.print(f"    {key}: {_plain(info.config.get(key, ''))}{requested}", markup=False)

    with_client(nats_url, None, go)


def _outline(value: Mapping[str, Any], indent: str) -> Iterator[str]:
    """Nested settings as indented ``key: value`` lines, so that they read at 80 columns
    where one JSON object per key would wrap mid-word."""
    for key, item in sorted(value.items()):
        if isinstance(item, Mapping) and item:
            yield f"{indent}{key}:"
            yield from _outline(item, indent + "  ")
        elif isinstance(item, list):
            # KAI's unnamed shard is the empty string: shown quoted rather than as nothing.
            shown = ", ".join(str(i) if i != "" else '""' for i in item)
            yield f"{indent}{key}: {shown or '-'}"
        else:
            yield f"{indent}{key}: {_plain(item) if item is not None else '-'}"


def config(
    ctx: typer.Context,
    ownership_protection: ProtectionOpt = None,
    cluster: ClusterOpt = "local",
    as_email: AsOpt = None,
    nats_url: NatsOpt = None,
) -> None:
    """A cluster's settings. `get` reads them back, `set` changes them (so does
    `berth cluster config --ownership-protection`)."""
    if ctx.invoked_subcommand is not None:
        return
    if ownership_protection is None:
        console.print(ctx.get_help())
        raise typer.Exit(0)
    _request(cluster, ownership_protection, as_email, nats_url)


def config_set(
    ownership_protection: ProtectionOpt = None,
    cluster: ClusterOpt = "local",
    as_email: AsOpt = None,
    nats_url: NatsOpt = None,
) -> None:
    """Change a cluster's settings. cluster-sync keeps them and sends them down to its agent."""
    if ownership_protection is None:
        raise fail("nothing to change: give --ownership-protection or --no-ownership-protection", 2)
    _request(cluster, ownership_protection, as_email, nats_url)


def _request(cluster: str, protection: bool, as_email: str | None, nats_url: str | None) -> None:
    actor = as_actor(as_email)

    async def go(client: BerthClient) -> None:
        from berth.contracts.events import (
            ClusterConfigRequestedData,
            ClusterConfigRequestedV1,
            ClusterSettings,
        )

        event = ClusterConfigRequestedV1(
            source="/berth/cli",
            subject=cluster,
            actor=actor,
            data=ClusterConfigRequestedData(
                clusterId=cluster,
                settings=ClusterSettings(workloadOwnershipProtection=protection),
            ),
        )
        await client.publish(event)
        say(
            f"requested for cluster {cluster}: workloadOwnershipProtection={protection}",
            markup=False,
        )

    with_client(nats_url, actor, go)


def config_get(
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", metavar="CLUSTER", help="Cluster id (default: every cluster)."),
    ] = None,
    out: OutputOpt = "table",
    nats_url: NatsOpt = None,
) -> None:
    """Show each cluster's settings. As its agent reported them, and as requested."""

    async def go(client: BerthClient) -> None:
        from berth.cli import output
        from berth.contracts.queries import ClusterQuery, ClusterReply
        from berth.contracts.subjects import RPC_CLUSTERS_GET

        reply: ClusterReply = await client.request(
            RPC_CLUSTERS_GET, ClusterQuery(clusterId=cluster), ClusterReply
        )
        if cluster and not reply.clusters:
            raise LookupError(f'no cluster "{cluster}" has reported to cluster-sync')
        found = [c.model_dump(mode="json") for c in reply.clusters]
        if out in (Format.json, Format.yaml):
            output.emit(found, out)
            return
        if out == Format.name:
            for c in reply.clusters:
                print(c.clusterId)
            return
        grid = output.table("CLUSTER", "BACKEND", "SETTING", "REPORTED", "REQUESTED")
        for c in reply.clusters:
            keys = sorted(set(c.config) | set(c.desired))
            for i, key in enumerate(keys):
                requested = "" if key not in c.desired else _plain(c.desired[key])
                first = i == 0
                output.row(
                    grid,
                    c.clusterId if first else "",
                    c.backend if first else "",
                    key,
                    _plain(c.config.get(key, "")),
                    requested,
                )
        output.show(console.get(), grid)

    with_client(nats_url, None, go)


def _plain(value: object) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)
