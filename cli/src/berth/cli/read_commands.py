"""Reading workloads: ``berth list``, ``describe``, ``trace`` and ``status``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from berth.cli.common import (
    Format,
    NatsOpt,
    OutputOpt,
    ProjectOpt,
    WatchOpt,
    choice,
    console,
    err,
    fail,
    project_or_default,
    with_client,
)
from berth.contracts.workload_kinds import KIND_NAMES

if TYPE_CHECKING:
    from berth.cli.client import BerthClient
    from berth.contracts.queries import WorkloadQuery, WorkloadView

SERVICES = ("intake", "policy", "catalog", "cluster-sync", "ownership", "scheduler-adapter")


KINDS = KIND_NAMES


NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The workload's name.")]


def register(app: typer.Typer) -> None:
    app.command("list")(list_)
    app.command()(describe)
    app.command()(trace)
    app.command()(status)


def list_(
    project: ProjectOpt = None,
    all_projects: Annotated[
        bool, typer.Option("--all-projects", "-A", metavar="", help="Every project's workloads.")
    ] = False,
    status_: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="Only in this status or phase, e.g. running, pending, rejected (repeat).",
        ),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            metavar="KIND",
            help="Only this kind: workspace, training, distributed or inference (repeat).",
            callback=choice(*KINDS),
        ),
    ] = None,
    cluster: Annotated[
        str | None, typer.Option("--cluster", metavar="CLUSTER", help="Only this cluster's.")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            metavar="N",
            min=1,
            max=1000,
            help="Only N workloads, newest first, read in one request (every one by default).",
        ),
    ] = None,
    offset: Annotated[
        int,
        typer.Option("--offset", metavar="N", min=0, help="With --limit: skip the N newest first."),
    ] = 0,
    watch: WatchOpt = False,
    out: OutputOpt = "table",
    nats_url: NatsOpt = None,
) -> None:
    """List workloads. Newest first; rejected and deleted ones come last."""
    from berth.contracts.queries import WorkloadQuery

    chosen = None if all_projects else project_or_default(project)
    query = WorkloadQuery(
        project=chosen,
        status=status_ or None,
        kind=kind or None,
        clusterId=cluster,
        limit=limit,
        offset=offset if limit else None,
    )

    async def go(client: BerthClient) -> None:
        from berth.cli import suggest

        rows = await client.workloads(query)
        # Intake keeps rejected submissions to unknown projects too: only the catalog knows.
        live = [r for r in rows if r.status != "rejected"]
        if not live and chosen and not await suggest.project_exists(client, chosen):
            hint = await suggest.project_hint(client, chosen)
            raise LookupError(f'project "{chosen}" does not exist{hint}')
        show_rows(rows, out, projects=chosen is None)
        if watch:
            await _watch_list(client, query, rows, projects=chosen is None)

    with_client(nats_url, None, go)


def show_rows(rows: list[WorkloadView], out: str, *, projects: bool) -> None:
    from berth.cli import output

    if out in (Format.json, Format.yaml):
        output.emit([r.model_dump(mode="json") for r in rows], out)
    elif out == Format.name:
        for r in rows:
            print(f"{r.project}/{r.name}" if projects else r.name)
    else:
        output.workload_table(console.get(), rows, wide=out == Format.wide, projects=projects)


async def _watch_list(
    client: BerthClient, query: WorkloadQuery, rows: list[WorkloadView], *, projects: bool
) -> None:
    """Like ``kubectl get -w``: after the table, one line per workload whose state changed."""
    import asyncio

    from berth.cli import output

    seen = {r.workloadId: (r.status, r.phaseMessage, r.runningPods) for r in rows}
    async with client.watch() as events:
        while True:
            await events.get()
            # A burst of events (a whole submission) is read back once.
            await asyncio.sleep(0.2)
            while not events.empty():
                events.get_nowait()
            for r in reversed(await client.workloads(query)):
                state = (r.status, r.phaseMessage, r.runningPods)
                if seen.get(r.workloadId) != state:
                    seen[r.workloadId] = state
                    print(output.workload_line(r, projects=projects), flush=True)


async def find(client: BerthClient, project: str, name: str) -> WorkloadView:
    """The workload, or a LookupError that suggests close names."""
    from berth.cli import suggest
    from berth.cli.client import Forbidden

    try:
        return await client.workload(project, name)
    except Forbidden:
        raise
    except LookupError:
        if not await suggest.project_exists(client, project):
            hint = await suggest.project_hint(client, project)
            raise LookupError(f'project "{project}" does not exist{hint}') from None
        hint = await suggest.workload_hint(client, project, name)
        raise LookupError(f'no workload "{name}" in project "{project}"{hint}') from None


def describe(
    name: NameArg,
    project: ProjectOpt = None,
    watch: WatchOpt = False,
    out: OutputOpt = "table",
    nats_url: NatsOpt = None,
) -> None:
    """Show a workload. Its spec, phase history with times, pods and trace id."""
    chosen = project_or_default(project)

    async def go(client: BerthClient) -> None:
        from berth.cli import output

        view = await find(client, chosen, name)
        if out == Format.name:
            print(view.name)
        else:
            found, why = await _cluster_pods(client, view)
            if out in (Format.json, Format.yaml):
                dumped = view.model_dump(mode="json")
                dumped["clusterPods"] = [p.model_dump(mode="json") for p in found]
                output.emit(dumped, out)
            else:
                output.describe(console.get(), view, found, why)
        if watch:
            await _watch_one(client, view)

    with_client(nats_url, None, go)


async def _cluster_pods(client: BerthClient, view: WorkloadView) -> tuple[list[Any], str]:
    """The workload's pods as its cluster reports them now (through the cluster's agent), or
    why they cannot be shown."""
    from berth.contracts.queries import PodsQuery, PodsReply
    from berth.contracts.subjects import rpc_pods

    if not view.clusterId or view.status in ("received", "approved", "rejected", "Deleted"):
        return [], ""
    try:
        reply: PodsReply = await client.request(
            rpc_pods(view.clusterId), PodsQuery(workloadId=view.workloadId), PodsReply, timeout=3
        )
    except Exception as exc:
        return [], f"cluster {view.clusterId} did not answer ({type(exc).__name__})"
    return reply.pods, reply.error or ""


async def _watch_one(client: BerthClient, view: WorkloadView) -> None:
    from berth.cli import output
    from berth.contracts.events import (
        TERMINAL_PHASES,
        PolicyApprovedV1,
        PolicyRejectedV1,
        WorkloadActionDeniedV1,
        WorkloadPhaseChangedV1,
    )

    if view.status in TERMINAL_PHASES or view.status == "rejected":
        return
    async with client.watch(view.workloadId) as events:
        while True:
            event = await events.get()
            at = event.time.strftime("%H:%M:%S")
            if isinstance(event, WorkloadPhaseChangedV1):
                # One event may report several transitions, each at its own time.
                for transition in event.transitions():
                    console.print(
                        f"{transition.time.strftime('%H:%M:%S')}  "
                        f"{output.phase(transition.phase)}{output.detail(transition.model_dump())}"
                    )
                phase = event.data.phase
                if phase in TERMINAL_PHASES:
                    return
            elif isinstance(event, PolicyApprovedV1):
                console.print(f"{at}  approved")
            elif isinstance(event, PolicyRejectedV1):
                console.print(f"{at}  [red]rejected[/red] by policy")
                output.issues(console.get(), [i.model_dump() for i in event.data.complianceIssues])
                return
            elif isinstance(event, WorkloadActionDeniedV1):
                console.print(
                    f"{at}  {event.data.action} denied: {event.data.reason}", markup=False
                )


def trace(
    name: NameArg,
    project: ProjectOpt = None,
    out: OutputOpt = "table",
    nats_url: NatsOpt = None,
) -> None:
    """Show a workload's trace. Its spans across every service, as a tree with durations."""
    chosen = project_or_default(project)

    async def go(client: BerthClient) -> None:
        from berth.cli import output

        view = await find(client, chosen, name)
        if not view.traceId:
            raise LookupError(f'workload "{name}" has no trace id')
        spans = await client.spans(view.traceId)
        if out in (Format.json, Format.yaml):
            output.emit(spans, out)
        elif out == Format.name:
            for span in spans:
                print(span["name"])
        elif not spans:
            err.print(f"no spans recorded for trace {view.traceId} (yet)", markup=False)
        else:
            output.trace_tree(console.get(), view.traceId, spans)

    with_client(nats_url, None, go)


def status(out: OutputOpt = "table", nats_url: NatsOpt = None) -> None:
    """Ask every service whether it is up. Also how many events wait in its outbox."""

    async def go(client: BerthClient) -> None:
        from berth.cli import output
        from berth.cli.client import BerthUnavailable
        from berth.contracts.queries import HealthQuery, HealthReply
        from berth.contracts.subjects import rpc_health

        found: list[dict[str, Any]] = []
        for name in SERVICES:
            try:
                reply: HealthReply = await client.request(
                    rpc_health(name), HealthQuery(), HealthReply, timeout=2
                )
                found.append(
                    {
                        "service": name,
                        "status": "degraded" if reply.status == "degraded" else "up",
                        "outboxPending": reply.outboxPending,
                        "problems": list(reply.problems),
                    }
                )
            except BerthUnavailable:
                found.append(
                    {"service": name, "status": "down", "outboxPending": None, "problems": []}
                )
        if out in (Format.json, Format.yaml):
            output.emit(found, out)
        elif out == Format.name:
            for item in found:
                print(item["service"])
        else:
            grid = output.table("SERVICE", "STATUS", "OUTBOX PENDING", "PROBLEMS")
            styles = {"up": "green", "degraded": "yellow", "down": "red"}
            for item in found:
                state = output.Text(item["status"], style=styles[item["status"]])
                pending = "" if item["outboxPending"] is None else str(item["outboxPending"])
                output.row(grid, item["service"], state, pending, "; ".join(item["problems"]))
            output.show(console.get(), grid)
        unwell = [i for i in found if i["status"] != "up"]
        if unwell:
            raise fail(", ".join(f"{i['service']} {i['status']}" for i in unwell), 1)

    with_client(nats_url, None, go)
