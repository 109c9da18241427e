"""What every command group of the CLI shares: the consoles, the common options, who the user
is, and running a command against the services with failures shown as messages, not
tracebacks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from berth.cli import endpoints
from berth.cli.client import BerthClient, BerthUnavailable, connect
from berth.contracts.envelope import Actor

console = Console()
err = Console(stderr=True)
T = TypeVar("T")

NatsOpt = Annotated[
    str | None,
    typer.Option(
        "--nats-url",
        help="NATS to talk to [env BERTH_NATS_URL; else what `berth up` started; "
        "else nats://127.0.0.1:4222]",
    ),
]
AsOpt = Annotated[
    str | None, typer.Option("--as", help="Act as this user (email) [env BERTH_USER].")
]
GroupOpt = Annotated[list[str] | None, typer.Option("--group", help="The user's groups (repeat).")]
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="table or json")]


def as_actor(as_email: str | None, groups: list[str] | None = None) -> Actor:
    who = endpoints.identity(as_email, groups)
    return Actor(email=who.email, groups=who.groups)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command; unreachable services exit 2, something not found exits 1."""
    try:
        return asyncio.run(coro)
    except BerthUnavailable as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    except LookupError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


def with_client(
    nats_url: str | None, actor: Actor | None, body: Callable[[BerthClient], Awaitable[None]]
) -> None:
    async def go() -> None:
        async with connect(endpoints.nats_url(nats_url), actor or as_actor(None)) as client:
            await body(client)

    run_async(go())
