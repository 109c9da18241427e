"""The ``berth`` command line: submit and follow workloads, and run the whole suite locally."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from berth.cli import endpoints, output
from berth.cli import submission as submission_flags
from berth.cli.client import BerthClient, BerthUnavailable, connect, new_workload_id
from berth.cli.common import (
    AsOpt,
    GroupOpt,
    NatsOpt,
    OutputOpt,
    as_actor,
    console,
    err,
    run_async,
    with_client,
)
from berth.cli.nats_commands import nats_config, nats_streams
from berth.cli.policy_commands import policy_app
from berth.contracts.envelope import Actor, RawEvent
from berth.contracts.events import (
    TERMINAL_PHASES,
    ClusterConfigRequestedData,
    ClusterConfigRequestedV1,
    ClusterSettings,
    SubmissionRequestedV1,
    WorkloadActionData,
    WorkloadActionRequestedV1,
)
from berth.contracts.queries import DryRunReply, DryRunRequest, HealthQuery, HealthReply
from berth.contracts.subjects import RPC_DRY_RUN, rpc_health

app = typer.Typer(
    help="berth: submit, govern and follow GPU workloads.\n\n"
    "Start everything locally with `berth up` (what `make run` does), then submit from another "
    "shell, e.g. `berth submit training -p team-a --name demo -i pytorch/pytorch --gpu 1 --wait`.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
submit_app = typer.Typer(
    help="Submit a workload (publishes the same event a UI would).", no_args_is_help=True
)
cluster_app = typer.Typer(help="Clusters and their settings.", no_args_is_help=True)
app.add_typer(submit_app, name="submit")
app.add_typer(cluster_app, name="cluster")
from berth.cli.catalog_commands import register as _register_catalog  # noqa: E402

_register_catalog(app)
from berth.cli.cluster_commands import register as _register_cluster  # noqa: E402

_register_cluster(cluster_app)
from berth.cli.deadletter_commands import register as _register_deadletter  # noqa: E402

_register_deadletter(app)
app.add_typer(policy_app, name="policy")
app.command("nats-config")(nats_config)
app.command("nats-streams")(nats_streams)


ProjectOpt = Annotated[str, typer.Option("--project", "-p", help="Project name.")]
SUCCESS = {"Completed", "Running"}


# --- submit --------------------------------------------------------------------------------


def _submit(
    kind: str,
    nats_url: str | None,
    wait: bool,
    timeout: float,
    actor: Actor,
    fields: dict[str, Any],
) -> None:
    try:
        body = submission_flags.build(kind=kind, **fields)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    code = run_async(_submit_async(endpoints.nats_url(nats_url), actor, body, wait, timeout))
    raise typer.Exit(code)


async def _submit_async(
    url: str, actor: Actor, body: dict[str, Any], wait: bool, timeout: float
) -> int:
    workload_id = new_workload_id()
    async with connect(url, actor) as client:
        with client.tracer.start_as_current_span(
            f"berth submit {body['kind']}",
            attributes={
                "berth.subject": workload_id,
                "berth.project": body["projectId"],
                "berth.workload.name": body["name"],
            },
        ) as span:
            event = RawEvent(
                source="/berth/cli",
                type=SubmissionRequestedV1.TYPE,
                version=SubmissionRequestedV1.VERSION,
                subject=workload_id,
                actor=actor,
                data={"submission": body},
            )
            subject = SubmissionRequestedV1.nats_subject(workload_id)
            trace_id = format(span.get_span_context().trace_id, "032x")
            if not wait:
                await client.publish(event, subject)
                console.print(
                    f"submitted {body['kind']} [bold]{body['name']}[/bold] "
                    f"(workload {workload_id}, trace {trace_id})"
                )
                return 0
            async with client.watch(workload_id) as events:
                await client.publish(event, subject)
                console.print(
                    f"submitted {body['kind']} [bold]{body['name']}[/bold] "
                    f"(workload {workload_id}, trace {trace_id}); waiting…"
                )
                return await _follow(events, body["kind"], timeout)


async def _follow(
    events: asyncio.Queue[tuple[str, dict[str, Any]]], kind: str, timeout: float
) -> int:
    start = time.monotonic()
    # Services with no end (workspaces, inference) are done once they run.
    done = TERMINAL_PHASES | ({"Running"} if kind in ("workspace", "inference") else set())
    while True:
        remaining = timeout - (time.monotonic() - start)
        if remaining <= 0:
            err.print(f"[yellow]timed out after {timeout:.0f}s[/yellow]")
            return 3
        try:
            prefix, envelope = await asyncio.wait_for(events.get(), remaining)
        except TimeoutError:
            continue
        data = envelope.get("data", {})
        at = f"{time.monotonic() - start:6.1f}s"
        if prefix in ("submission.rejected.v1", "policy.rejected.v1"):
            issues = data.get("issues") or data.get("complianceIssues") or []
            who = "intake" if prefix.startswith("submission") else "policy"
            console.print(f"{at}  [red]Rejected[/red] by {who}:")
            output.issues(console, issues)
            return 1
        if prefix == "submission.received.v1":
            console.print(f"{at}  Received")
        elif prefix == "policy.approved.v1":
            console.print(f"{at}  Approved")
        elif prefix == "workload.scheduled.v1":
            objects = ", ".join(f"{o['kind']}/{o['name']}" for o in data.get("objects", []))
            console.print(f"{at}  Scheduled ({objects})")
        elif prefix == "workload.phase-changed.v1":
            phase = data.get("phase", "")
            console.print(f"{at}  {output.phase(phase)}{output.detail(data)}")
            if phase in done:
                return 0 if phase in SUCCESS else 1


def _dry_run(
    kind: str, nats_url: str | None, actor: Actor, fields: dict[str, Any], out: str
) -> None:
    try:
        body = submission_flags.build(kind=kind, **fields)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None

    async def go(client: BerthClient) -> None:
        reply: DryRunReply = await client.request(
            RPC_DRY_RUN, DryRunRequest(actor=actor, submission=body), DryRunReply, timeout=20
        )
        if out == "json":
            print(reply.model_dump_json(indent=2))
        elif out == "yaml" and not reply.issues:
            print(yaml.safe_dump_all(reply.manifests, sort_keys=False), end="")
        else:
            output.dry_run(console, reply)
        raise typer.Exit(1 if reply.issues else 0)

    with_client(nats_url, actor, go)


def _submit_command(kind: str, doc: str) -> None:
    def command(
        project: ProjectOpt,
        name: Annotated[str, typer.Option("--name", help="Workload name (unique in the project).")],
        image: Annotated[str | None, typer.Option("--image", "-i", help="Container image.")] = None,
        gpu: Annotated[int | None, typer.Option("--gpu", "-g", help="Whole GPU devices.")] = None,
        gpu_portion: Annotated[
            float | None, typer.Option("--gpu-portion", help="Fraction of one GPU (0-1).")
        ] = None,
        cpu: Annotated[float | None, typer.Option("--cpu", help="CPU cores.")] = None,
        memory: Annotated[
            str | None, typer.Option("--memory", help="CPU memory, e.g. 16G.")
        ] = None,
        command_: Annotated[str | None, typer.Option("--command", help="Command to run.")] = None,
        args: Annotated[
            str | None, typer.Option("--args", help="Arguments of the command.")
        ] = None,
        env: Annotated[
            list[str] | None, typer.Option("--env", "-e", help="NAME=VALUE (repeat).")
        ] = None,
        label: Annotated[
            list[str] | None, typer.Option("--label", help="KEY=VALUE (repeat).")
        ] = None,
        annotation: Annotated[
            list[str] | None, typer.Option("--annotation", help="KEY=VALUE (repeat).")
        ] = None,
        node_pools: Annotated[
            str | None,
            typer.Option("--node-pools", help="Node pools in priority order, comma-separated."),
        ] = None,
        backoff_limit: Annotated[
            int | None,
            typer.Option("--backoff-limit", help="Retries before failing (0-100; default 6)."),
        ] = None,
        auto_delete: Annotated[
            int | None,
            typer.Option(
                "--auto-delete-seconds",
                help="Delete this long after finishing (default 30 days; 0 = at once).",
            ),
        ] = None,
        allow_over_quota: Annotated[
            bool | None,
            typer.Option(
                "--allow-over-quota/--within-quota", help="May exceed the project's quota."
            ),
        ] = None,
        name_prefix: Annotated[
            bool,
            typer.Option("--name-prefix", help="Treat --name as a prefix and add a unique suffix."),
        ] = False,
        template: Annotated[
            str | None, typer.Option("--template", help="Start from this workload template.")
        ] = None,
        environment: Annotated[
            str | None, typer.Option("--environment", help="Environment asset.")
        ] = None,
        compute: Annotated[
            str | None, typer.Option("--compute", help="Compute resource asset.")
        ] = None,
        datasource: Annotated[
            list[str] | None, typer.Option("--datasource", help="Data source asset (repeat).")
        ] = None,
        workers: Annotated[
            int | None, typer.Option("--workers", help="Distributed training: number of workers.")
        ] = None,
        framework: Annotated[
            str | None,
            typer.Option("--framework", help="Distributed training: pytorch, tf, mpi or xgboost."),
        ] = None,
        as_email: AsOpt = None,
        group: GroupOpt = None,
        wait: Annotated[
            bool,
            typer.Option(
                "--wait",
                help="Follow the phases until the end; exit non-zero on rejection or failure.",
            ),
        ] = False,
        timeout: Annotated[
            float, typer.Option("--timeout", help="Seconds --wait waits at most.")
        ] = 600,
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run",
                help="Validate, apply policy and render, creating nothing: prints the effective spec and any issues.",
            ),
        ] = False,
        out: Annotated[
            str,
            typer.Option(
                "--output",
                "-o",
                help="With --dry-run: text, yaml (the Kubernetes objects) or json.",
            ),
        ] = "text",
        nats_url: NatsOpt = None,
    ) -> None:
        fields = {
            "project": project,
            "name": name,
            "name_prefix": name_prefix,
            "image": image,
            "gpu": gpu,
            "gpu_portion": gpu_portion,
            "cpu": cpu,
            "memory": memory,
            "command": command_,
            "args": args,
            "env": env,
            "labels": label,
            "annotations": annotation,
            "node_pools": node_pools,
            "backoff_limit": backoff_limit,
            "auto_delete_seconds": auto_delete,
            "allow_over_quota": allow_over_quota,
            "assets": {
                "template": template,
                "environment": environment,
                "compute": compute,
                "dataSources": datasource,
            },
        }
        if kind == "training":
            fields.update(workers=workers, framework=framework)
        if dry_run:
            _dry_run(kind, nats_url, as_actor(as_email, group), fields, out)
        _submit(kind, nats_url, wait, timeout, as_actor(as_email, group), fields)

    command.__doc__ = doc
    submit_app.command(kind, help=doc)(command)


_submit_command("training", "Submit a training (single node, or distributed with --workers).")
_submit_command("workspace", "Submit an interactive workspace.")
_submit_command("inference", "Submit an inference service.")


# --- read ----------------------------------------------------------------------------------


@app.command("list")
def list_(project: ProjectOpt, out: OutputOpt = "table", nats_url: NatsOpt = None) -> None:
    """List a project's workloads, newest first."""

    async def go(client: BerthClient) -> None:
        rows = await client.workloads(project)
        if out == "json":
            print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        else:
            output.workload_table(console, rows)

    with_client(nats_url, None, go)


@app.command()
def describe(
    name: str, project: ProjectOpt, out: OutputOpt = "table", nats_url: NatsOpt = None
) -> None:
    """Show a workload: its spec, phase history with times, and trace id."""

    async def go(client: BerthClient) -> None:
        view = await client.workload(project, name)
        if out == "json":
            print(view.model_dump_json(indent=2))
        else:
            output.describe(console, view)

    with_client(nats_url, None, go)


@app.command()
def trace(
    name: str, project: ProjectOpt, out: OutputOpt = "table", nats_url: NatsOpt = None
) -> None:
    """Show the span tree of a workload across every service, with durations."""

    async def go(client: BerthClient) -> None:
        view = await client.workload(project, name)
        if not view.traceId:
            raise LookupError(f'workload "{name}" has no trace id')
        spans = await client.spans(view.traceId)
        if out == "json":
            print(json.dumps(spans, indent=2))
        elif not spans:
            err.print(f"no spans recorded for trace {view.traceId} (yet)")
        else:
            output.trace_tree(console, view.traceId, spans)

    with_client(nats_url, None, go)


@app.command()
def status(nats_url: NatsOpt = None) -> None:
    """Ask every service whether it is up."""
    services = ["intake", "policy", "catalog", "cluster-sync", "ownership", "scheduler-adapter"]

    async def go(client: BerthClient) -> None:
        down = degraded = 0
        for name in services:
            try:
                reply: HealthReply = await client.request(
                    rpc_health(name), HealthQuery(), HealthReply, timeout=2
                )
                if reply.status == "degraded":
                    degraded += 1
                    console.print(
                        f"[yellow]degraded[/yellow] {name:18} {'; '.join(reply.problems)}"
                    )
                else:
                    console.print(
                        f"[green]up[/green]    {name:18} outbox pending {reply.outboxPending}"
                    )
            except BerthUnavailable:
                down += 1
                console.print(f"[red]down[/red]  {name}")
        if down or degraded:
            raise typer.Exit(1)

    with_client(nats_url, None, go)


# --- actions -------------------------------------------------------------------------------


def _action(
    action: str,
    name: str,
    project: str,
    as_email: str | None,
    group: list[str] | None,
    nats_url: str | None,
    wait: bool,
) -> None:
    actor = as_actor(as_email, group)

    async def go(client: BerthClient) -> None:
        view = await client.workload(project, name)
        if view.status in ("Deleted", "rejected"):
            raise LookupError(f'workload "{name}" in project "{project}" is {view.status}')
        event = WorkloadActionRequestedV1(
            source="/berth/cli",
            subject=view.workloadId,
            actor=actor,
            data=WorkloadActionData(action=action, name=view.name, project=project),  # type: ignore[arg-type]
        )
        async with client.watch(view.workloadId) as events:
            with client.tracer.start_as_current_span(f"berth {action}"):
                await client.publish(event)
            code = await _follow_action(events, action, wait)
        raise typer.Exit(code)

    with_client(nats_url, actor, go)


async def _follow_action(
    events: asyncio.Queue[tuple[str, dict[str, Any]]], action: str, wait: bool, timeout: float = 120
) -> int:
    final = {"delete": "Deleted", "suspend": "Stopped", "resume": "Running"}[action]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            prefix, envelope = await asyncio.wait_for(events.get(), 1.0)
        except TimeoutError:
            continue
        data = envelope.get("data", {})
        if prefix == "workload.action-denied.v1":
            err.print(f"[red]denied:[/red] {data.get('reason', '')}")
            return 1
        if prefix == "workload.action-authorized.v1":
            console.print(f"{action} authorized")
            if not wait:
                return 0
        if prefix == "workload.phase-changed.v1":
            console.print(f"  {output.phase(data.get('phase', ''))}{output.detail(data)}")
            if data.get("phase") == final:
                return 0
    err.print("[yellow]no answer yet; see `berth describe`[/yellow]")
    return 3


def _action_command(action: str, doc: str) -> None:
    def command(
        name: str,
        project: ProjectOpt,
        as_email: AsOpt = None,
        group: GroupOpt = None,
        wait: Annotated[
            bool, typer.Option("--wait/--no-wait", help="Wait for the cluster to finish.")
        ] = True,
        nats_url: NatsOpt = None,
    ) -> None:
        _action(action, name, project, as_email, group, nats_url, wait)

    app.command(action, help=doc)(command)


_action_command("delete", "Delete a workload (only its creator, when ownership protection is on).")
_action_command("suspend", "Suspend a workload: its pods stop, its storage stays.")
_action_command("resume", "Resume a suspended workload.")


@cluster_app.command("config")
def cluster_config(
    ownership_protection: Annotated[
        bool | None,
        typer.Option(
            "--ownership-protection/--no-ownership-protection",
            help="Only a workload's creator may delete or suspend it.",
        ),
    ] = None,
    cluster: Annotated[str, typer.Option("--cluster", help="Cluster id.")] = "local",
    as_email: AsOpt = None,
    nats_url: NatsOpt = None,
) -> None:
    """Change a cluster's settings (sent to its agent through cluster-sync)."""
    if ownership_protection is None:
        err.print("nothing to change: give --ownership-protection or --no-ownership-protection")
        raise typer.Exit(2)
    actor = as_actor(as_email, None)

    async def go(client: BerthClient) -> None:
        event = ClusterConfigRequestedV1(
            source="/berth/cli",
            subject=cluster,
            actor=actor,
            data=ClusterConfigRequestedData(
                clusterId=cluster,
                settings=ClusterSettings(workloadOwnershipProtection=ownership_protection),
            ),
        )
        await client.publish(event)
        console.print(
            f"requested for cluster {cluster}: workloadOwnershipProtection={ownership_protection}"
        )

    with_client(nats_url, actor, go)


# --- the local suite -------------------------------------------------------------------------


@app.command()
def up(
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Where embedded servers keep data and logs.")
    ] = Path(".berth"),
    sim_speed: Annotated[
        float, typer.Option("--sim-speed", help="Simulated cluster seconds per real second.")
    ] = 1.0,
    inventory: Annotated[
        Path | None, typer.Option("--inventory", help="YAML inventory of the simulated cluster.")
    ] = None,
) -> None:
    """Run the whole suite in the foreground: NATS and PostgreSQL (embedded, unless
    BERTH_NATS_URL / BERTH_DATABASE_URL point elsewhere), the six services, and a simulated
    cluster. Ctrl-C stops everything."""
    from berth.cli.suite import Suite

    # `kill` (SIGTERM) stops the suite as cleanly as Ctrl-C does; SIGINT is set explicitly
    # because a shell starting berth in the background leaves it ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    suite = Suite(
        state_dir.resolve(),
        sim_speed=sim_speed,
        inventory=inventory,
        progress=lambda line: console.print(line),
    )
    try:
        suite.start()
    except Exception as exc:
        err.print(f"[red]could not start berth:[/red] {type(exc).__name__}: {exc}")
        suite.stop()
        raise typer.Exit(1) from None
    endpoints.record(suite.nats_url, suite.database_url, suite.credentials_dir)
    console.print(output.welcome(suite))
    try:
        suite.supervise()
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping…")
        suite.stop()
        endpoints.forget()
        console.print("stopped.")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
