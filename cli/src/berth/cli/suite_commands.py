"""The installation itself: ``berth up`` (the local suite), ``berth version`` and the cluster's
settings (``berth cluster config get|set``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from berth.cli.common import (
    AsOpt,
    Format,
    NatsOpt,
    OutputOpt,
    as_actor,
    console,
    err,
    fail,
    say,
    with_client,
)

if TYPE_CHECKING:
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


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"berth {version('berth-cli')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "berth (unknown version)"


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command("version")(version_)
    cluster_app = typer.Typer(
        rich_markup_mode=None, help="Clusters and their settings.", no_args_is_help=True
    )
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


def version_() -> None:
    """Print berth's version."""
    print(version_text())


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
    """Change a cluster's settings. Sent to its agent through cluster-sync."""
    if ownership_protection is None:
        raise fail("nothing to change: give --ownership-protection or --no-ownership-protection", 2)
    _request(cluster, ownership_protection, as_email, nats_url)


def _request(cluster: str, protection: bool, as_email: str | None, nats_url: str | None) -> None:
    actor = as_actor(as_email, None)

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


def up(
    state_dir: Annotated[
        Path,
        typer.Option(
            "--state-dir", metavar="DIR", help="Where embedded servers keep data and logs."
        ),
    ] = Path(".berth"),
    sim_speed: Annotated[
        float,
        typer.Option(
            "--sim-speed",
            metavar="FACTOR",
            help="Simulated cluster seconds per real second [env BERTH_SIM_SPEED].",
        ),
    ] = 1.0,
    inventory: Annotated[
        Path | None,
        typer.Option(
            "--inventory", metavar="FILE", help="YAML inventory of the simulated cluster."
        ),
    ] = None,
) -> None:
    """Run the whole suite locally. In the foreground: NATS and PostgreSQL (embedded, unless
    BERTH_NATS_URL / BERTH_DATABASE_URL point elsewhere), the six services, and a simulated
    cluster. Ctrl-C stops everything."""
    import os
    import signal

    from berth.cli import endpoints, output
    from berth.cli.suite import Suite

    if "BERTH_SIM_SPEED" in os.environ and sim_speed == 1.0:
        sim_speed = float(os.environ["BERTH_SIM_SPEED"])
    # `kill` (SIGTERM) stops the suite as cleanly as Ctrl-C does; SIGINT is set explicitly
    # because a shell starting berth in the background leaves it ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    suite = Suite(
        state_dir.resolve(),
        sim_speed=sim_speed,
        inventory=inventory,
        progress=lambda line: console.print(line),
    )
    try:
        suite.start()
    except Exception as exc:
        err.print(f"could not start berth: {type(exc).__name__}: {exc}", markup=False, style="red")
        suite.stop()
        raise typer.Exit(1) from None
    endpoints.record(suite.nats_url, suite.database_url)
    console.print(output.welcome(suite))
    try:
        suite.supervise()
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping…")
        suite.stop()
        endpoints.forget()
        console.print("stopped.")
