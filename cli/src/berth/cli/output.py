"""How the CLI shows things.

Everything that comes from users or services (names, messages, patterns, annotation values) is
shown as plain text, never read as rich markup: ``[bold]`` in a label or ``^[a-z]`` in a message
must come out exactly as written. Tables fold long values instead of cutting them, so they stay
whole at 80 columns (pipes, CI logs).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape as escape
from rich.table import Table
from rich.text import Text as Text
from rich.tree import Tree

from berth.cli.common import Format

if TYPE_CHECKING:
    from berth.cli.suite import Suite
    from berth.contracts.queries import DryRunReply, PodInfo, WorkloadView

PHASE_STYLE = {
    "Completed": "green",
    "Running": "green",
    "Failed": "red",
    "rejected": "red",
    "Pending": "yellow",
    "Degraded": "yellow",
    "Deleted": "dim",
}
# Rows that are no longer (or never were) workloads on a cluster: listed after the others.
GONE = {"rejected", "Deleted"}


def phase(name: str) -> str:
    style = PHASE_STYLE.get(name)
    return f"[{style}]{escape(name)}[/{style}]" if style else escape(name)


def phase_text(name: str) -> Text:
    return Text(name, style=PHASE_STYLE.get(name, ""))


def detail(data: dict[str, Any]) -> str:
    parts = []
    if data.get("message"):
        parts.append(str(data["message"]))
    if data.get("reason"):
        parts.append(f"reason: {data['reason']}")
    if data.get("requestedPods"):
        parts.append(f"pods {data.get('runningPods', 0)}/{data['requestedPods']} running")
    return escape(f"  ({'; '.join(parts)})") if parts else ""


def issues(console: Console, items: Iterable[dict[str, Any]]) -> None:
    for issue in items:
        field, details = escape(str(issue.get("field"))), escape(str(issue.get("details")))
        console.print(f"  - [bold]{field}[/bold]: {details}")


# Columns of free text: they wrap (at spaces; folding only words longer than the column) so
# that the identifying columns (names, kinds, statuses) always stay whole on one line.
FLEXIBLE = frozenset(
    {"MESSAGE", "DETAILS", "CREATED BY", "NODE POOLS", "STATUS REASON", "PROBLEMS"}
)


def table(*columns: str) -> Table:
    """A table whose identifying cells are never cut and whose free text wraps."""
    grid = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        flexible = column in FLEXIBLE
        grid.add_column(column, overflow="fold", no_wrap=not flexible, min_width=len(column))
    return grid


def show(console: Console, grid: Table) -> None:
    """Print a table at the console's width, or wider when its whole columns need more (as
    ``kubectl -o wide`` does): free text gets at least a readable width, never one letter."""
    needed = sum(c.min_width or 0 for c in grid.columns if c.no_wrap)
    needed += sum(24 for c in grid.columns if not c.no_wrap) + 2 * (len(grid.columns) - 1)
    width = console.width
    # Console.print clamps its width argument to the console's: widen the console itself.
    console.width = max(width, needed)
    try:
        console.print(grid)
    finally:
        console.width = width


def row(grid: Table, *cells: str | Text) -> None:
    texts = [c if isinstance(c, Text) else Text(c) for c in cells]
    for column, text in zip(grid.columns, texts, strict=False):
        if not column.no_wrap:
            continue
        # A fixed column is as wide as its widest cell: rich may shrink the others, not this.
        column.min_width = max(column.min_width or 0, text.cell_len)
    grid.add_row(*texts)


def emit(data: Any, fmt: str) -> None:
    """Machine-readable output: JSON or YAML on stdout, never wrapped or coloured."""
    if fmt == Format.yaml:
        import yaml

        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    else:
        print(json.dumps(data, indent=2, default=str))


def emit_all(documents: Sequence[Any]) -> None:
    import yaml

    print(yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True), end="")


def age(when: datetime, now: datetime | None = None) -> str:
    seconds = int(((now or datetime.now(UTC)) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def submission_of(view: WorkloadView) -> dict[str, Any]:
    spec = view.spec or {}
    inner = spec.get("submission")
    return inner if isinstance(inner, dict) else spec


def gpus(view: WorkloadView) -> str:
    from berth.contracts.workload import requested_gpus

    try:
        total = requested_gpus(submission_of(view))
    except (TypeError, ValueError, AttributeError):
        return ""
    return f"{total:g}" if total else "0"


def pods(view: WorkloadView) -> str:
    if not view.requestedPods:
        return ""
    return f"{view.runningPods or 0}/{view.requestedPods}"


def node_pools(view: WorkloadView) -> str:
    pools = (submission_of(view).get("spec") or {}).get("nodePools") or []
    return ",".join(str(p) for p in pools)


def ordered(rows: Sequence[WorkloadView]) -> list[WorkloadView]:
    """Live workloads first (newest first, as listed), then rejected and deleted ones."""
    return [r for r in rows if r.status not in GONE] + [r for r in rows if r.status in GONE]


def workload_table(
    console: Console, rows: Sequence[WorkloadView], *, wide: bool, projects: bool
) -> None:
    columns = ["NAME", "KIND", "STATUS", "GPU", "PODS", "AGE"]
    if projects:
        columns.insert(0, "PROJECT")
    if wide:
        columns += ["CLUSTER", "NODE POOLS", "CREATED BY", "MESSAGE"]
    grid = table(*columns)
    for r in ordered(rows):
        cells: list[str | Text] = [r.name, r.kind, phase_text(r.status), gpus(r), pods(r)]
        cells.append(age(r.submittedAt))
        if projects:
            cells.insert(0, r.project)
        if wide:
            cells += [r.clusterId or "", node_pools(r), r.createdBy, r.phaseMessage]
        row(grid, *cells)
    show(console, grid)


def workload_line(view: WorkloadView, *, projects: bool) -> str:
    """One row of ``list -w`` after the table: what changed, plainly."""
    where = f"{view.project}/" if projects else ""
    message = f"  {view.phaseMessage}" if view.phaseMessage else ""
    return f"{where}{view.name}  {view.kind}  {view.status}  {pods(view)}{message}"


def describe(
    console: Console,
    view: WorkloadView,
    cluster_pods: Sequence[PodInfo] = (),
    pods_unknown: str = "",
) -> None:
    console.print(Text.assemble((view.name, "bold"), f"  ({view.kind} in project {view.project})"))
    fields: list[tuple[str, str | Text]] = [
        ("id", view.workloadId),
        ("status", Text.assemble(phase_text(view.status), f"  {view.phaseMessage}")),
        ("pods", pods(view)),
        ("cluster", view.clusterId or ""),
        ("created by", view.createdBy),
        ("submitted", view.submittedAt.isoformat()),
        ("trace id", view.traceId or ""),
    ]
    for label, value in fields:
        if value:
            console.print(Text.assemble(f"  {label + ':':12} ", value))
    if view.issues:
        console.print("  issues:")
        issues(console, view.issues)
    if cluster_pods:
        grid = table("POD", "PHASE", "NODE", "POOL", "GPUS", "RESTARTS", "REASON")
        for pod in cluster_pods:
            why = f"{pod.reason}: {pod.message}" if pod.message else pod.reason
            row(
                grid,
                pod.name,
                pod.phase,
                pod.node or "-",
                pod.nodePool or "-",
                pod.gpus or "-",
                str(pod.restarts),
                why,
            )
        console.print(f"  pods on cluster {view.clusterId}:", markup=False)
        show(console, grid)
    elif pods_unknown:
        console.print(f"  pods: {pods_unknown}", markup=False)
    if view.phases:
        grid = table("TIME", "PHASE", "MESSAGE")
        for p in view.phases:
            row(grid, p.at.strftime("%H:%M:%S.%f")[:-3], phase_text(p.phase), p.message)
        console.print("  phase history:")
        show(console, grid)
    if view.spec:
        import yaml

        console.print("  spec:")
        body = yaml.safe_dump(view.spec, sort_keys=False, allow_unicode=True)
        console.print(Text("    " + body.rstrip("\n").replace("\n", "\n    ")))


def dry_run(console: Console, reply: DryRunReply) -> None:
    import yaml

    if reply.issues:
        console.print("[red]would be rejected:[/red]")
        issues(console, [i.model_dump() for i in reply.issues])
    else:
        kinds = ", ".join(f"{m['kind']}/{m['metadata']['name']}" for m in reply.manifests)
        console.print(Text.assemble(("would be accepted", "green"), f"; objects: {kinds}"))
    if reply.effectiveSpec:
        console.print("effective spec:")
        body = yaml.safe_dump(reply.effectiveSpec, sort_keys=False, allow_unicode=True)
        console.print(Text("  " + body.rstrip("\n").replace("\n", "\n  ")))


def trace_tree(console: Console, trace_id: str, spans: list[dict[str, Any]]) -> None:
    by_id = {s["spanId"]: s for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for s in spans:
        parent = s.get("parentId")
        children[parent if parent in by_id else None].append(s)
    start = min(s["start"] for s in spans)
    services = sorted({str(s.get("service")) for s in spans})
    root = Tree(
        Text.assemble(
            "trace ", (trace_id, "bold"), f"  ({len(spans)} spans; services: {', '.join(services)})"
        )
    )

    def add(node: Tree, span: dict[str, Any]) -> None:
        duration = ((span.get("end") or span["start"]) - span["start"]) / 1e6
        offset = (span["start"] - start) / 1e6
        label = Text.assemble(
            (str(span.get("service")), "cyan"),
            f" {span['name']}  ",
            (f"+{offset:.1f}ms, {duration:.2f}ms", "dim"),
        )
        if span.get("status") == "ERROR":
            label.append(" error", style="red")
        branch = node.add(label)
        for child in sorted(children.get(span["spanId"], []), key=lambda s: s["start"]):
            add(branch, child)

    for top in sorted(children[None], key=lambda s: s["start"]):
        add(root, top)
    console.print(root)


def welcome(suite: Suite) -> str:
    return (
        "\n[bold green]berth is up.[/bold green]\n"
        f"  NATS:        {escape(suite.nats_url)}\n"
        f"  PostgreSQL:  {escape(suite.database_url)}\n"
        f"  logs:        {escape(str(suite.log_dir))}\n"
        f"  console:     {escape(suite.api_url)}/console  (Run:ai's REST API under /api)\n\n"
        + "".join(
            f"  cluster {escape(c)}: kubeconfig {escape(str(suite.kubeconfig(c)))}\n"
            for c in suite.clusters
        )
        + "\n"
        "In another shell (with the virtualenv active: source .venv/bin/activate), try:\n"
        + (
            "  berth login --user alice@example.com --group team-a\n"
            "      (the development issuer: for development only)\n"
            if suite.dev_issuer
            else "  berth login   (at the identity provider, BERTH_OIDC_ISSUER)\n"
        )
        + "  berth project set team-a\n"
        "  berth training submit demo -i pytorch/pytorch --gpu 1 --wait\n"
        "  berth describe demo\n"
        "  berth trace demo\n"
        "  berth status\n"
        "  berth cluster list\n\n"
        "Ctrl-C stops everything."
    )
