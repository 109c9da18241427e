"""What every command group of the CLI shares: the consoles, the common options, who the user
is, and running a command against the services with failures shown as messages, not
tracebacks.

Only light modules are imported here: ``berth --help`` and the parsing of every command must not
pay for NATS, OpenTelemetry or pydantic models; command bodies import those when they run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from berth.cli import endpoints

if TYPE_CHECKING:
    from rich.console import Console

    from berth.cli.client import BerthClient
    from berth.contracts.envelope import Actor

T = TypeVar("T")


class _LazyConsole:
    """A rich console made on first use: importing rich costs more than most commands need."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


console: Any = _LazyConsole(stderr=False)
err: Any = _LazyConsole(stderr=True)


@dataclass
class Verbosity:
    """Set once by the global ``-q``/``--verbose`` options."""

    quiet: bool = False
    verbose: bool = False


verbosity = Verbosity()


def say(text: str, *, markup: bool = True) -> None:
    """Progress and confirmations: silent with ``-q``. Pass ``markup=False`` when the text
    holds anything a user wrote."""
    if not verbosity.quiet:
        console.print(text, markup=markup)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error in the CLI's words; ``raise fail(...)`` exits with ``code``."""
    from rich.markup import escape

    # One line, however long: scripts and people read errors whole.
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


class Format(StrEnum):
    """``-o``: how a command prints what it read."""

    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"
    name = "name"


def _typer_in_our_words() -> None:
    """Three habits of typer that read badly in berth's help and errors, changed in one place:
    a value it cannot convert is described in pydantic's words ("Input should be a valid
    integer") where berth says "must be a whole number; got 'two'"; a required argument shows as
    ``{NAME}`` in the usage line where command lines write ``NAME``; and an argument's Python
    type (``<str>``) is shown beside its metavar. If a typer release moves these, its own
    behaviour simply remains."""
    import typer._coercion
    import typer._param_types
    from typer.core import TyperArgument

    def message(exc: Any) -> str:
        from berth.contracts.issues import plain

        errors = exc.errors() if hasattr(exc, "errors") else []
        return plain(errors[0]) if errors else str(exc)

    for module in (typer._coercion, typer._param_types):
        if hasattr(module, "get_error_msg"):
            module.get_error_msg = message  # type: ignore[attr-defined]

    def usage_name(self: TyperArgument) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")

    if hasattr(TyperArgument, "_usage_display_name"):
        TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]
    if hasattr(TyperArgument, "display_type_rich"):
        TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign,assignment]


_typer_in_our_words()


def choice(*names: str) -> Callable[[Any], Any]:
    """A typer callback that refuses anything but ``names``, in the CLI's words.

    Choices are checked here rather than by typer so that the message reads like the rest of
    berth's ("must be one of a, b; got 'c'"), for a single value or a repeated option alike."""

    def check(value: Any) -> Any:
        for item in value if isinstance(value, list) else [value]:
            if item is not None and item not in names:
                raise typer.BadParameter(f"must be one of {', '.join(names)}; got {item!r}")
        return value

    return check


FORMATS = tuple(f.value for f in Format)
check_format = choice(*FORMATS)

NatsOpt = Annotated[
    str | None,
    typer.Option(
        "--nats-url",
        metavar="URL",
        help="NATS to talk to [env BERTH_NATS_URL; else what `berth up` started; "
        "else nats://127.0.0.1:4222]",
    ),
]
AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="EMAIL",
        help="Act as this identity, one you logged in as (berth login); else the current one.",
    ),
]
OutputOpt = Annotated[
    str,
    typer.Option(
        "--output",
        "-o",
        metavar="FORMAT",
        help="table, wide, json, yaml or name.",
        show_default=False,
        callback=check_format,
    ),
]
ProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project",
        "-p",
        metavar="PROJECT",
        help="Project [env BERTH_PROJECT; else the one `berth project set` chose].",
        show_default=False,
    ),
]
WatchOpt = Annotated[
    bool,
    typer.Option("--watch", "-w", metavar="", help="Keep showing changes until Ctrl-C."),
]


def project_or_default(project: str | None) -> str:
    """The project a command acts on: the flag, ``BERTH_PROJECT``, then ``berth project set``."""
    from berth.cli import preferences

    chosen = project or os.environ.get("BERTH_PROJECT") or preferences.load().get("project")
    if not chosen:
        raise fail(
            "no project: give -p PROJECT, set BERTH_PROJECT, or choose one with "
            "`berth project set PROJECT`",
            2,
        )
    return str(chosen)


def as_actor(as_email: str | None = None) -> Actor:
    """Who a command acts as: ``--as`` among the identities logged in, else ``BERTH_TOKEN``'s,
    else the current one; ``anonymous`` (sending no token, which the services refuse but
    for health) when nobody is logged in. The services take the actor from the token alone;
    this one names who the CLI speaks for."""
    from berth.cli import tokens
    from berth.contracts.envelope import Actor

    try:
        identity = tokens.select(as_email)
    except tokens.NotLoggedIn as exc:
        raise fail(str(exc), 2) from None
    if identity is None:
        return Actor(email=ANONYMOUS)
    return Actor(
        email=identity.email,
        groups=tuple(identity.groups),
        subject=identity.subject,
        kind="application" if identity.kind == "application" else "user",
    )


# The actor of a CLI nobody has logged in to: its requests carry no token.
ANONYMOUS = "anonymous"


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command; unreachable services exit 2, something not found exits 1."""
    from berth.cli.client import BerthUnavailable

    try:
        return asyncio.run(coro)
    except (BerthUnavailable, endpoints.NotRunning) as exc:
        raise fail(str(exc), 2) from None
    except LookupError as exc:
        raise fail(str(exc).strip("'\""), 1) from None


def with_client(
    nats_url: str | None, actor: Actor | None, body: Callable[[BerthClient], Awaitable[None]]
) -> None:
    from berth.cli.client import connect

    async def go() -> None:
        async with connect(endpoints.nats_url(nats_url), actor or as_actor(None)) as client:
            await body(client)

    run_async(go())
