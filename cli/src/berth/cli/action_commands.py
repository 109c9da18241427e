"""Acting on a workload: ``berth delete|suspend|resume``; ownership authorizes or denies."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from berth.cli.common import (
    AsOpt,
    NatsOpt,
    ProjectOpt,
    as_actor,
    err,
    project_or_default,
    say,
    with_client,
)

if TYPE_CHECKING:
    import asyncio

    from berth.cli.client import BerthClient
    from berth.contracts.envelope import Event
    from berth.contracts.phases import WorkloadAction

DOCS: dict[WorkloadAction, str] = {
    "delete": "Delete a workload. Only its creator may, when ownership protection is on.",
    "suspend": "Suspend a workload. Its pods stop, its storage stays.",
    "resume": "Resume a suspended workload.",
}


def register(app: typer.Typer) -> None:
    for action, doc in DOCS.items():
        app.command(action, help=doc)(_command(action))


def _command(action: WorkloadAction) -> Callable[..., None]:
    def command(
        name: Annotated[str, typer.Argument(metavar="NAME", help="The workload's name.")],
        project: ProjectOpt = None,
        as_email: AsOpt = None,
        wait: Annotated[
            bool,
            typer.Option("--wait/--no-wait", metavar="", help="Wait for the cluster to finish."),
        ] = True,
        nats_url: NatsOpt = None,
    ) -> None:
        _act(action, name, project_or_default(project), as_actor(as_email), nats_url, wait)

    command.__name__ = action
    return command


def _act(
    action: WorkloadAction,
    name: str,
    project: str,
    actor: object,
    nats_url: str | None,
    wait: bool,
) -> None:
    async def go(client: BerthClient) -> None:
        from berth.cli.client import Forbidden, new_workload_id
        from berth.cli.read_commands import find
        from berth.contracts.events import WorkloadActionData, WorkloadActionRequestedV1

        try:
            view = await find(client, project, name)
            subject, named = view.workloadId, view.name
        except Forbidden:
            # Not readable by this caller, so its id is unknown here: ask by name (under a
            # request id of our own), and ownership answers whether this caller may act.
            subject, named = new_workload_id().replace("-", ""), name
        else:
            if view.status in ("Deleted", "rejected"):
                raise LookupError(f'workload "{name}" in project "{project}" is {view.status}')
        event = WorkloadActionRequestedV1(
            source="/berth/cli",
            subject=subject,
            actor=client.actor,
            data=WorkloadActionData(action=action, name=named, project=project),
        )
        async with client.watch(subject) as events:
            with client.tracer.start_as_current_span(f"berth {action}"):
                await client.publish(event)
            code = await _follow(events, action, wait)
        raise typer.Exit(code)

    with_client(nats_url, actor, go)  # type: ignore[arg-type]


async def _follow(
    events: asyncio.Queue[Event], action: WorkloadAction, wait: bool, timeout: float = 120
) -> int:
    import asyncio
    import time

    from berth.cli import output
    from berth.contracts.events import (
        WorkloadActionAuthorizedV1,
        WorkloadActionDeniedV1,
        WorkloadPhaseChangedV1,
    )
    from berth.contracts.phases import ACTION_RESULTS

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            event = await asyncio.wait_for(events.get(), 1.0)
        except TimeoutError:
            continue
        if isinstance(event, WorkloadActionDeniedV1):
            err.print(f"[red]denied:[/red] {output.escape(event.data.reason)}")
            return 1
        if isinstance(event, WorkloadActionAuthorizedV1):
            say(f"{action} authorized")
            if not wait:
                return 0
        if isinstance(event, WorkloadPhaseChangedV1):
            for transition in event.transitions():
                say(f"  {output.phase(transition.phase)}{output.detail(transition.model_dump())}")
            if event.data.phase == ACTION_RESULTS[action]:
                return 0
    err.print("[yellow]no answer yet; see `berth describe`[/yellow]")
    return 3
