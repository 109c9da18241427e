"""`berth deadletter`: what the services set aside (messages they could not handle, events they
could not publish), with the reason, the original subject and when; replay or discard each."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from berth.cli.common import NatsOpt, OutputOpt, console, err, with_client

if TYPE_CHECKING:
    from berth.cli.client import BerthClient

deadletter_app = typer.Typer(
    help="Dead letters: messages and events set aside with a reason; list, show, replay, discard.",
    no_args_is_help=True,
)

SeqArg = Annotated[
    int, typer.Argument(help="The dead letter's number (see `berth deadletter list`).")
]


def register(app: typer.Typer) -> None:
    app.add_typer(deadletter_app, name="deadletter")


@deadletter_app.command("list")
def list_(
    service: Annotated[
        str | None, typer.Option("--service", "-s", help="Only this service's.")
    ] = None,
    out: OutputOpt = "table",
    nats_url: NatsOpt = None,
) -> None:
    """Every dead letter, oldest first."""

    async def go(client: BerthClient) -> None:
        from berth.shared import deadletters

        letters = await deadletters.list_letters(client.js, service)
        if out == "json":
            console.print_json(json.dumps([d.summary() for d in letters]))
            return
        if not letters:
            console.print("no dead letters")
            return
        from rich.table import Table

        table = Table("#", "service", "at", "subject", "reason")
        for d in letters:
            table.add_row(str(d.seq), d.service, d.at[:19], d.original_subject, d.reason[:120])
        console.print(table)

    with_client(nats_url, None, go)


@deadletter_app.command()
def show(seq: SeqArg, out: OutputOpt = "table", nats_url: NatsOpt = None) -> None:
    """One dead letter: reason, original subject, time, headers and payload."""

    async def go(client: BerthClient) -> None:
        from berth.shared import deadletters

        d = await deadletters.get(client.js, seq)
        payload = d.payload.decode(errors="replace")
        if out == "json":
            console.print_json(
                json.dumps({**d.summary(), "headers": d.headers, "payload": payload})
            )
            return
        for key, value in d.summary().items():
            console.print(f"[bold]{key}:[/bold] {value}")
        console.print("[bold]payload:[/bold]")
        console.print(payload, markup=False, highlight=False)

    with_client(nats_url, None, go)


@deadletter_app.command()
def replay(seq: SeqArg, nats_url: NatsOpt = None) -> None:
    """Publish it again to its original subject, and remove it from the dead letters.

    The event id stays: a consumer that did handle it skips it."""

    async def go(client: BerthClient) -> None:
        from berth.shared import deadletters

        try:
            d = await deadletters.replay(client.js, seq)
        except ValueError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        console.print(f"replayed {seq} to {d.original_subject}")

    with_client(nats_url, None, go)


@deadletter_app.command()
def discard(seq: SeqArg, nats_url: NatsOpt = None) -> None:
    """Remove it for good."""

    async def go(client: BerthClient) -> None:
        from berth.shared import deadletters

        d = await deadletters.discard(client.js, seq)
        console.print(f"discarded {seq} ({d.original_subject}: {d.reason[:80]})")

    with_client(nats_url, None, go)
