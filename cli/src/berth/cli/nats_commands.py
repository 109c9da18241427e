"""``berth nats-config``: the NATS accounts, users and permissions of a deployment, generated
from the contracts (see ``berth.cli.nats_auth``); ``berth nats-streams``: berth's streams,
created as the operator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from berth.cli.common import NatsOpt, console, err, fail, run_async


def register(app: typer.Typer) -> None:
    app.command("nats-config")(nats_config)
    app.command("nats-streams")(nats_streams)


def nats_config(
    directory: Annotated[
        Path,
        typer.Option(
            "--dir",
            metavar="DIR",
            help="Where the role keys (<role>.nk, kept when they exist) and nats-server.conf go.",
        ),
    ] = Path("nats-auth"),
    clusters: Annotated[
        list[str] | None,
        typer.Option(
            "--cluster",
            metavar="CLUSTER",
            help="Cluster ids whose agents connect (repeat) [local].",
        ),
    ] = None,
    table: Annotated[
        bool,
        typer.Option("--table", metavar="", help="Only print the permission table (Markdown)."),
    ] = False,
) -> None:
    """Write the NATS server configuration and a key per role. One nkey user per role, with
    least-privilege permissions generated from the event contracts; the configuration is also
    printed."""
    from berth.cli import nats_auth
    from berth.contracts.roles import ROLES

    chosen = tuple(clusters or nats_auth.DEFAULT_CLUSTERS)
    if table:
        console.print(
            nats_auth.markdown_table(chosen), markup=False, highlight=False, soft_wrap=True
        )
        return
    config = nats_auth.ensure_credentials(directory, chosen)
    console.print(config.read_text(), markup=False, highlight=False, soft_wrap=True)
    err.print(
        f"written: {config} (include it in the server's configuration) and one seed per role: "
        + ", ".join(str(nats_auth.credential_file(directory, r)) for r in ROLES)
        + f". Give each process its role's seed file in {nats_auth.CREDENTIALS_ENV}.",
        markup=False,
        highlight=False,
    )


def nats_streams(
    nats_url: NatsOpt = None,
    replicas: Annotated[
        int,
        typer.Option(
            "--replicas",
            metavar="N",
            envvar="BERTH_STREAM_REPLICAS",
            min=1,
            max=5,
            help="Copies of each stream on a NATS cluster (3 on a three-node cluster).",
        ),
    ] = 1,
    max_age_days: Annotated[
        float,
        typer.Option(
            "--max-age-days",
            metavar="DAYS",
            envvar="BERTH_STREAM_MAX_AGE_DAYS",
            min=1,
            help="How long the event streams keep an event. Keep the services' "
            "BERTH_INBOX_RETENTION_DAYS at least this long.",
        ),
    ] = 30.0,
    max_bytes: Annotated[
        int,
        typer.Option(
            "--max-bytes",
            metavar="BYTES",
            envvar="BERTH_STREAM_MAX_BYTES",
            min=-1,
            help="Size limit of each event stream, oldest dropped first (-1: none; a limit can "
            "drop events a stopped consumer has not read yet).",
        ),
    ] = -1,
    telemetry_max_age_days: Annotated[
        float,
        typer.Option(
            "--telemetry-max-age-days",
            metavar="DAYS",
            envvar="BERTH_TELEMETRY_MAX_AGE_DAYS",
            min=0.01,
            help="How long the TELEMETRY stream keeps spans.",
        ),
    ] = 7.0,
    telemetry_max_bytes: Annotated[
        int,
        typer.Option(
            "--telemetry-max-bytes",
            metavar="BYTES",
            envvar="BERTH_TELEMETRY_MAX_BYTES",
            min=1 << 20,
            help="Size limit of the TELEMETRY stream, oldest spans dropped first.",
        ),
    ] = 1 << 30,
) -> None:
    """Create or update berth's JetStream streams, as the operator. With the admin credential
    (BERTH_NATS_ADMIN_CREDENTIALS, or the one `berth up` made); services never create streams,
    they wait until these exist."""
    from berth.cli import endpoints
    from berth.cli.client import BerthUnavailable
    from berth.contracts.roles import ADMIN
    from berth.contracts.subjects import STREAMS
    from berth.shared.bus import StreamRetention, connect, ensure_streams

    try:
        url = endpoints.nats_url(nats_url)
    except endpoints.NotRunning as exc:
        raise fail(str(exc), 2) from None
    credentials = endpoints.nats_credentials(url, ADMIN)

    async def declare() -> None:
        try:
            nc = await connect(
                url,
                name="berth-nats-streams",
                credentials=credentials,
                role=ADMIN,
                max_reconnect_attempts=0,
                allow_reconnect=False,
            )
        except Exception as exc:
            raise BerthUnavailable(f"cannot reach NATS at {url} as admin: {exc}") from None
        try:
            retention = StreamRetention(
                max_age_days=max_age_days,
                max_bytes=max_bytes,
                telemetry_max_age_days=telemetry_max_age_days,
                telemetry_max_bytes=telemetry_max_bytes,
            )
            await ensure_streams(nc.jetstream(), replicas=replicas, retention=retention)
        finally:
            await nc.close()

    run_async(declare())
    console.print("streams: " + ", ".join(STREAMS), markup=False)
