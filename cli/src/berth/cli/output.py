"""How the CLI shows things."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from berth.contracts.queries import DryRunReply, WorkloadView

if TYPE_CHECKING:
    from berth.cli.suite import Suite

PHASE_STYLE = {
    "Completed": "green",
    "Running": "green",
    "Failed": "red",
    "rejected": "red",
    "Pending": "yellow",
    "Degraded": "yellow",
    "Deleted": "dim",
}


def phase(name: str) -> str:
    style = PHASE_STYLE.get(name)
    return f"[{style}]{name}[/{style}]" if style else name


def detail(data: dict[str, Any]) -> str:
    parts = []
    if data.get("message"):
        parts.append(str(data["message"]))
    if data.get("reason"):
        parts.append(f"reason: {data['reason']}")
    if data.get("requestedPods"):
        parts.append(f"pods {data.get('runningPods', 0)}/{data['requestedPods']} running")
    return f"  ({'; '.join(parts)})" if parts else ""


def issues(console: Console, items: list[dict[str, Any]]) -> None:
    for issue in items:
        console.print(f"  - [bold]{issue.get('field')}[/bold]: {issue.get('details')}")


def workload_table(console: Console, rows: list[WorkloadView]) -> None:
    table = Table("NAME", "KIND", "STATUS", "CREATED BY", "SUBMITTED", "MESSAGE")
    for r in rows:
        table.add_row(
            r.name,
            r.kind,
            phase(r.status),
            r.createdBy,
            r.submittedAt.strftime("%Y-%m-%d %H:%M:%S"),
            r.phaseMessage,
        )
    console.print(table)


def describe(console: Console, view: WorkloadView) -> None:
    console.print(f"[bold]{view.name}[/bold]  ({view.kind} in project {view.project})")
    console.print(f"  id:          {view.workloadId}")
    console.print(f"  status:      {phase(view.status)}  {view.phaseMessage}")
    console.print(f"  created by:  {view.createdBy}")
    console.print(f"  submitted:   {view.submittedAt.isoformat()}")
    console.print(f"  trace id:    {view.traceId}")
    if view.issues:
        console.print("  issues:")
        issues(console, view.issues)
    if view.phases:
        table = Table("TIME", "PHASE", "MESSAGE", title="phase history", title_justify="left")
        for p in view.phases:
            table.add_row(p.at.strftime("%H:%M:%S.%f")[:-3], phase(p.phase), p.message)
        console.print(table)
    if view.spec:
        import yaml

        console.print("  spec:")
        console.print("    " + yaml.safe_dump(view.spec, sort_keys=False).replace("\n", "\n    "))


def dry_run(console: Console, reply: DryRunReply) -> None:
    import yaml

    if reply.issues:
        console.print("[red]would be rejected:[/red]")
        issues(console, [i.model_dump() for i in reply.issues])
    else:
        kinds = ", ".join(f"{m['kind']}/{m['metadata']['name']}" for m in reply.manifests)
        console.print(f"[green]would be accepted[/green]; objects: {kinds}")
    if reply.effectiveSpec:
        console.print("effective spec:")
        console.print(
            "  " + yaml.safe_dump(reply.effectiveSpec, sort_keys=False).replace("\n", "\n  ")
        )


def trace_tree(console: Console, trace_id: str, spans: list[dict[str, Any]]) -> None:
    by_id = {s["spanId"]: s for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for s in spans:
        parent = s.get("parentId")
        children[parent if parent in by_id else None].append(s)
    start = min(s["start"] for s in spans)
    services = sorted({str(s.get("service")) for s in spans})
    root = Tree(
        f"trace [bold]{trace_id}[/bold]  ({len(spans)} spans; services: {', '.join(services)})"
    )

    def add(node: Tree, span: dict[str, Any]) -> None:
        duration = ((span.get("end") or span["start"]) - span["start"]) / 1e6
        offset = (span["start"] - start) / 1e6
        label = (
            f"[cyan]{span.get('service')}[/cyan] {span['name']}  "
            f"[dim]+{offset:.1f}ms, {duration:.2f}ms[/dim]"
        )
        if span.get("status") == "ERROR":
            label += " [red]error[/red]"
        branch = node.add(label)
        for child in sorted(children.get(span["spanId"], []), key=lambda s: s["start"]):
            add(branch, child)

    for top in sorted(children[None], key=lambda s: s["start"]):
        add(root, top)
    console.print(root)


def welcome(suite: Suite) -> str:
    return (
        "\n[bold green]berth is up.[/bold green]\n"
        f"  NATS:        {suite.nats_url}\n"
        f"  PostgreSQL:  {suite.database_url}\n"
        f"  logs:        {suite.log_dir}\n\n"
        "In another shell (with the virtualenv active: source .venv/bin/activate), try:\n"
        "  berth submit training -p team-a --name demo -i pytorch/pytorch --gpu 1 --wait\n"
        "  berth describe demo -p team-a\n"
        "  berth trace demo -p team-a\n"
        "  berth status\n\n"
        "Ctrl-C stops everything."
    )
