"""``berth nats-config``: the NATS accounts, users and permissions of a deployment, generated
from the contracts (see ``berth.cli.nats_auth``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from berth.cli import nats_auth
from berth.cli.common import console, err
from berth.contracts.roles import ROLES


def nats_config(
    directory: Annotated[
        Path,
        typer.Option(
            "--dir",
            help="Where the role keys (<role>.nk, kept when they exist) and nats-server.conf go.",
        ),
    ] = Path("nats-auth"),
    clusters: Annotated[
        list[str] | None,
        typer.Option("--cluster", help="Cluster ids whose agents connect (repeat) [local]."),
    ] = None,
    table: Annotated[
        bool, typer.Option("--table", help="Only print the permission table (Markdown).")
    ] = False,
) -> None:
    """Print the nats-server configuration (one nkey user per role, least-privilege
    permissions generated from the event contracts) and write it with one key per role."""
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
