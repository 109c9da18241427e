"""The installation itself: ``berth up`` (the local suite) and ``berth version``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from berth.cli.common import console, err


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"berth {version('berth-cli')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "berth (unknown version)"


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command("version")(version_)


def version_() -> None:
    """Print berth's version."""
    print(version_text())


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
            "--inventory", metavar="FILE", help="YAML inventory of the first simulated cluster."
        ),
    ] = None,
    clusters: Annotated[
        list[str] | None,
        typer.Option(
            "--cluster",
            metavar="NAME[=INVENTORY]",
            help="A cluster, simulated with an inventory file or preset (default, edge); "
            "repeat for more. Default: local and edge=edge.",
        ),
    ] = None,
    kubeconfigs: Annotated[
        list[str] | None,
        typer.Option(
            "--kubeconfig",
            metavar="NAME=FILE",
            help="A real cluster's API server instead of a simulated one, for cluster NAME.",
        ),
    ] = None,
) -> None:
    """Run the whole suite locally. In the foreground: NATS and PostgreSQL (embedded, unless
    BERTH_NATS_URL / BERTH_DATABASE_URL point elsewhere), the six services, and two simulated
    clusters (local and edge), each with its agent. Ctrl-C stops everything."""
    import os
    import signal

    from berth.cli import endpoints, output
    from berth.cli.suite import Suite
    from berth.cli.supervision import AlreadyRunning

    if "BERTH_SIM_SPEED" in os.environ and sim_speed == 1.0:
        sim_speed = float(os.environ["BERTH_SIM_SPEED"])
    # `kill` (SIGTERM) stops the suite as cleanly as Ctrl-C does; SIGINT is set explicitly
    # because a shell starting berth in the background leaves it ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    named = [c.partition("=") for c in clusters or ("local", "edge=edge")]
    real = dict(k.partition("=")[::2] for k in kubeconfigs or ())
    for cluster, file in list(real.items()):
        if not file:
            err.print(f"--kubeconfig {cluster}: expected NAME=FILE", style="red")
            raise typer.Exit(2)
        if cluster not in [name for name, _, _ in named]:
            named.append((cluster, "", ""))
    suite = Suite(
        state_dir.resolve(),
        sim_speed=sim_speed,
        inventory=inventory,
        clusters=[name for name, _, _ in named],
        inventories={name: source for name, _, source in named if source},
        kubeconfigs={name: Path(file).expanduser().resolve() for name, file in real.items()},
        # Plain text: service log tails are not markup.
        progress=lambda line: console.print(line, markup=False, highlight=False),
    )
    try:
        suite.start()
    except AlreadyRunning as exc:
        # Nothing of the running one is touched: not its servers, not what it recorded.
        print(exc, file=sys.stderr)
        raise typer.Exit(1) from None
    except Exception as exc:
        err.print(f"could not start berth: {type(exc).__name__}: {exc}", markup=False, style="red")
        suite.stop()
        raise typer.Exit(1) from None
    endpoints.record(suite.nats_url, suite.database_url, suite.credentials_dir, suite.identity_dir)
    # Paths and URLs are copied from here: the terminal may fold them, rich must not break them.
    console.print(output.welcome(suite), soft_wrap=True)
    try:
        suite.supervise()
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping…")
        suite.stop()
        endpoints.forget()
        console.print("stopped.")
