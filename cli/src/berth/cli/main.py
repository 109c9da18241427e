"""The ``berth`` command line: submit and follow workloads, govern them, and run the whole suite
locally.

Commands are grouped by concern, one module each: submitting (``submit_commands``), reading
(``read_commands``), acting on workloads (``action_commands``), the installation
(``suite_commands``, ``nats_commands``), clusters (``cluster_commands``), the catalog
(``catalog_commands``) and policies (``policy_commands``).
Those modules import only typer at the top; what a command needs is imported when it runs, so
``berth --help`` stays quick.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from berth.cli import (
    access_commands,
    action_commands,
    catalog_commands,
    cluster_commands,
    deadletter_commands,
    login_commands,
    logs_commands,
    nats_commands,
    read_commands,
    submit_commands,
    suite_commands,
)
from berth.cli.application_commands import application_app
from berth.cli.common import verbosity
from berth.cli.policy_commands import policy_app

app = typer.Typer(
    rich_markup_mode=None,
    help="berth: submit, govern and follow GPU workloads.\n\n"
    "Start everything locally with `berth up` (what `make run` does), then, from another "
    "shell: `berth project set team-a` and "
    "`berth training submit demo -i pytorch/pytorch --gpu 1 --wait`.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(suite_commands.version_text())
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[  # noqa: ARG001 (acted on by its callback, before any command)
        bool,
        typer.Option(
            "--version", metavar="", is_eager=True, callback=_version, help="Print the version."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", metavar="", help="Print only results and errors."),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", metavar="", help="Print more: ids, trace ids."),
    ] = False,
) -> None:
    """berth: submit, govern and follow GPU workloads."""
    verbosity.quiet = quiet
    verbosity.verbose = verbose and not quiet


login_commands.register(app)
submit_commands.register(app)
read_commands.register(app)
action_commands.register(app)
catalog_commands.register(app)
cluster_commands.register(app)
access_commands.register(app)
logs_commands.register(app)
app.add_typer(policy_app, name="policy")
app.add_typer(application_app, name="application")
suite_commands.register(app)
nats_commands.register(app)
deadletter_commands.register(app)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
