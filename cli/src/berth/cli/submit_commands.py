"""Submitting workloads: one command per kind, each with exactly the flags of its kind.

``berth workspace|training|inference submit NAME`` and, for distributed trainings,
``berth training pytorch|tf|mpi|xgboost submit NAME --workers N`` (Run:ai's command shapes);
``berth submit workspace|training|inference`` stays as the older spelling of the same commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from berth.cli import spec_options
from berth.cli.common import (
    Format,
    as_actor,
    check_format,
    console,
    err,
    fail,
    project_or_default,
    run_async,
    say,
    verbosity,
)
from berth.cli.options import Opt, command
from berth.cli.submission import FRAMEWORKS, ComputeFlags, Submission, WorkloadFlags

if TYPE_CHECKING:
    import asyncio

    from berth.cli.client import BerthClient
    from berth.contracts.envelope import Actor, Event
    from berth.contracts.events import Issue

# --- the options, each declared once -----------------------------------------------------------

NAME = Opt(
    "name",
    (),
    str | None,
    "Workload name: a DNS label, unique in the project (a prefix with --name-prefix).",
    metavar="NAME",
    argument=True,
)
OLD_NAME = Opt("name_option", ("--name",), str | None, "Same as NAME.", "NAME", hidden=True)
PROJECT = Opt(
    "project",
    ("--project", "-p"),
    str | None,
    "Project [env BERTH_PROJECT; else the one `berth project set` chose].",
    "PROJECT",
)
CLUSTER = Opt(
    "cluster",
    ("--cluster",),
    str | None,
    "Cluster to run on (`berth cluster list`); the project's cluster when not given.",
    "CLUSTER",
)
NAME_PREFIX = Opt(
    "name_prefix",
    ("--name-prefix",),
    bool,
    "Treat NAME as a prefix and add a unique suffix; the name given is printed.",
    default=False,
)
CONTAINER = [
    spec_options.IMAGE,
    spec_options.PULL_POLICY,
    spec_options.COMMAND,
    spec_options.ARGS,
    Opt("working_dir", ("--working-dir",), str | None, "Working directory.", "DIR"),
    spec_options.ENV,
    Opt(
        "env_credential",
        ("--env-credential",),
        list[str] | None,
        "Environment variable from a key of a credential asset, e.g. HF_TOKEN=hf (the key is "
        "NAME unless given); the value never leaves the cluster (repeat).",
        "NAME=CREDENTIAL[:KEY]",
    ),
    spec_options.LABELS,
    spec_options.ANNOTATIONS,
    spec_options.NODE_POOLS,
    Opt("node_type", ("--node-type",), str | None, "Node type (node label) to run on.", "TYPE"),
    Opt(
        "volumes",
        ("--volume",),
        list[str] | None,
        "A new claim mounted at PATH; OPTIONS: class=NAME, access=rwo|rox|rwx, block, "
        "ephemeral (repeat).",
        "PATH:SIZE[:OPTIONS]",
    ),
]
COMPUTE = spec_options.COMPUTE
ASSETS = [
    Opt("template", ("--template",), str | None, "Start from this workload template.", "TEMPLATE"),
    Opt(
        "environment",
        ("--environment",),
        str | None,
        "Environment asset (instead of the template's).",
        "ENVIRONMENT",
    ),
    Opt(
        "compute",
        ("--compute",),
        str | None,
        "Compute resource asset (instead of the template's).",
        "COMPUTE",
    ),
    spec_options.DATASOURCES.but(help="Data source asset, added to the template's (repeat)."),
]
QUOTA = spec_options.OVER_QUOTA
AUTO_DELETE = Opt(
    "auto_delete_seconds",
    ("--auto-delete-seconds",),
    int | None,
    "Delete this long after finishing (default 30 days; 0 = at once).",
    "SECONDS",
)
BACKOFF = Opt(
    "backoff_limit",
    ("--backoff-limit",),
    int | None,
    "Retries before failing (0-100; default 6).",
    "N",
)
TRAINING = [
    Opt("completions", ("--completions",), int | None, "Successful pods needed.", "N"),
    Opt("parallelism", ("--parallelism",), int | None, "Pods run at once.", "N"),
]
WORKERS = Opt("workers", ("--workers",), int | None, "Number of workers (default 1).", "N")
NO_MASTER = Opt(
    "no_master", ("--no-master",), bool, "Workers only: no separate master pod.", default=False
)
MASTER = [
    Opt("master_image", ("--master-image",), str | None, "The master's image.", "IMAGE"),
    Opt("master_command", ("--master-command",), str | None, "The master's command.", "COMMAND"),
    Opt("master_args", ("--master-args",), str | None, "The master's arguments.", "ARGS"),
    Opt("master_gpu", ("--master-gpu",), int | None, "The master's GPU devices.", "N"),
    Opt(
        "master_gpu_portion",
        ("--master-gpu-portion",),
        float | None,
        "The master's fraction of one GPU.",
        "FRACTION",
    ),
    Opt("master_cpu", ("--master-cpu",), float | None, "The master's CPU cores.", "CORES"),
    Opt("master_memory", ("--master-memory",), str | None, "The master's CPU memory.", "QTY"),
    Opt(
        "master_env",
        ("--master-env",),
        list[str] | None,
        "The master's own environment variable (repeat).",
        "NAME=VALUE",
    ),
]
SLOTS = Opt("slots_per_worker", ("--slots-per-worker",), int | None, "Slots per worker (MPI).", "N")
ELASTIC = [
    Opt("elastic_min", ("--min-workers",), int | None, "Elastic: fewest workers.", "N"),
    Opt("elastic_max", ("--max-workers",), int | None, "Elastic: most workers.", "N"),
]
INFERENCE = [
    Opt("serving_port", ("--serving-port",), int | None, "Port the server listens on.", "PORT"),
    Opt(
        "serving_protocol",
        ("--serving-protocol",),
        str | None,
        "http or grpc (default http).",
        "PROTOCOL",
    ),
    Opt("min_replicas", ("--min-replicas",), int | None, "Fewest replicas (default 1).", "N"),
    Opt("max_replicas", ("--max-replicas",), int | None, "Most replicas.", "N"),
    Opt(
        "metric",
        ("--metric",),
        str | None,
        "What adds replicas: throughput, concurrency or latency.",
        "METRIC",
    ),
    Opt(
        "metric_threshold",
        ("--metric-threshold",),
        int | None,
        "Value of --metric above which a replica is added (default 100).",
        "N",
    ),
    Opt(
        "model",
        ("--model",),
        str | None,
        "Serve this model from a catalog, e.g. meta-llama/Llama-3.1-8B-Instruct.",
        "NAME",
    ),
    Opt(
        "model_catalog",
        ("--model-catalog",),
        str | None,
        "huggingface (default) or berth.",
        "CATALOG",
    ),
    Opt(
        "model_credential",
        ("--model-credential",),
        str | None,
        "Credential asset holding the catalog's access token.",
        "CREDENTIAL",
    ),
    Opt(
        "scale_to_zero_seconds",
        ("--scale-to-zero",),
        int | None,
        "Remove the last replica after this many idle seconds (sets --min-replicas 0).",
        "SECONDS",
    ),
]
RUN = [
    Opt(
        "as_email",
        ("--as",),
        str | None,
        "Act as this identity, one you logged in as (berth login); else the current one.",
        "EMAIL",
    ),
    Opt(
        "wait",
        ("--wait",),
        bool,
        "Follow every phase until the end; exit non-zero on rejection or failure.",
        default=False,
    ),
    Opt(
        "timeout", ("--timeout",), float, "Seconds --wait waits at most.", "SECONDS", default=600.0
    ),
    Opt(
        "dry_run",
        ("--dry-run",),
        bool,
        "Validate, apply policy and render, creating nothing.",
        default=False,
    ),
    Opt(
        "out",
        ("--output", "-o"),
        str,
        "table, wide, json, yaml (with --dry-run: the Kubernetes objects) or name.",
        "FORMAT",
        default="table",
        callback=check_format,
    ),
    Opt("nats_url", ("--nats-url",), str | None, "NATS to talk to [env BERTH_NATS_URL].", "URL"),
]


def _options(kind: str, framework: str | None = None) -> list[Opt]:
    opts = [NAME, PROJECT, CLUSTER, OLD_NAME, NAME_PREFIX, *CONTAINER, *COMPUTE]
    opts += [*ASSETS, QUOTA, AUTO_DELETE]
    if kind in ("workspace", "training", "distributed"):
        opts.append(BACKOFF)
    if kind == "training":
        opts += TRAINING
    if kind == "distributed":
        opts += [WORKERS, NO_MASTER, *MASTER]
        if framework == "mpi":
            opts.append(SLOTS)
        if framework == "pytorch":
            opts += ELASTIC
    if kind == "inference":
        opts += INFERENCE
    return [*opts, *RUN]


def _flags(values: dict[str, Any], prefix: str = "") -> WorkloadFlags:
    """The flags of one pod spec: the workers' (no prefix) or the master's (``master_``)."""
    names = {f for f in WorkloadFlags.__dataclass_fields__ if f != "compute"}

    def get(key: str) -> Any:
        return values.get(prefix + key)

    flags = {name: get(name) for name in names}
    compute = ComputeFlags(
        **{f: get(f) for f in ComputeFlags.__dataclass_fields__}  # type: ignore[arg-type]
    )
    return WorkloadFlags(**flags, compute=compute)


def submission_of(kind: str, values: dict[str, Any], framework: str | None = None) -> Submission:
    name = values.get("name") or values.get("name_option")
    if not name:
        raise fail("give the workload's NAME", 2)
    master = _flags(values, "master_") if kind == "distributed" else None
    if master is not None and values.get("no_master") and master.spec():
        raise fail("--no-master runs no master: drop the --master-* flags", 2)
    return Submission(
        kind=kind,
        project=project_or_default(values.get("project")),
        name=name,
        flags=_flags(values),
        name_prefix=bool(values.get("name_prefix")),
        template=values.get("template"),
        environment=values.get("environment"),
        compute=values.get("compute"),
        datasources=values.get("datasource"),
        framework=framework,
        master=master,
        no_master=bool(values.get("no_master")),
    )


def _run(kind: str, values: dict[str, Any], framework: str | None = None) -> None:
    try:
        body = submission_of(kind, values, framework).body()
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    if values.get("cluster"):
        body["clusterId"] = values["cluster"]
    actor = as_actor(values.get("as_email"))
    url = values.get("nats_url")
    out: str = values.get("out") or Format.table
    if values.get("dry_run"):
        raise typer.Exit(run_async(_dry_run(url, actor, body, out)))
    code = run_async(_submit(url, actor, body, bool(values.get("wait")), values["timeout"], out))
    raise typer.Exit(code)


# --- what a submission does ----------------------------------------------------------------------

# Intake answers in well under a second; a loaded machine gets room before we give up waiting.
ANSWER_TIMEOUT = 30.0
SUCCESS = {"Completed", "Running"}


async def _dry_run(url: str | None, actor: Actor, body: dict[str, Any], out: str) -> int:
    from berth.cli import endpoints, output
    from berth.cli.client import connect
    from berth.contracts.queries import DryRunReply, DryRunRequest
    from berth.contracts.subjects import RPC_DRY_RUN

    async with connect(endpoints.nats_url(url), actor) as client:
        reply: DryRunReply = await client.request(
            RPC_DRY_RUN, DryRunRequest(actor=actor, submission=body), DryRunReply, timeout=30
        )
        if reply.issues:
            await _explain(client, body, [i.model_dump() for i in reply.issues])
    if out in (Format.table, Format.wide) or (reply.issues and out != Format.json):
        output.dry_run(console, reply)
    elif out == Format.json:
        output.emit(reply.model_dump(mode="json"), out)
    elif out == Format.yaml:
        output.emit_all(reply.manifests)
    else:
        for manifest in reply.manifests:
            print(f"{manifest['kind'].lower()}/{manifest['metadata']['name']}")
    return 1 if reply.issues else 0


async def _submit(
    url: str | None, actor: Actor, body: dict[str, Any], wait: bool, timeout: float, out: str
) -> int:
    from berth.cli import endpoints
    from berth.cli.client import connect, new_workload_id
    from berth.contracts.envelope import RawEvent
    from berth.contracts.events import SubmissionRequestedV1

    workload_id = new_workload_id()
    async with connect(endpoints.nats_url(url), actor) as client:
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
            trace_id = format(span.get_span_context().trace_id, "032x")
            async with client.watch(workload_id) as events:
                await client.publish(event, SubmissionRequestedV1.nats_subject(workload_id))
                return await _follow(client, events, body, wait, timeout, out, trace_id)


async def _follow(
    client: BerthClient,
    events: asyncio.Queue[Event],
    body: dict[str, Any],
    wait: bool,
    timeout: float,
    out: str,
    trace_id: str,
) -> int:
    """Print the answer: received (with the name given) and approved, or rejected by intake or
    policy; with --wait, every phase until the workload ends (or runs, for workspaces and
    inference)."""
    import asyncio
    import time

    from rich.markup import escape

    from berth.cli import output
    from berth.contracts.events import (
        PolicyApprovedV1,
        PolicyRejectedV1,
        SubmissionReceivedV1,
        SubmissionRejectedV1,
        WorkloadPhaseChangedV1,
        WorkloadScheduledV1,
    )
    from berth.contracts.phases import SETTLED_PHASES_BY_KIND

    start = time.monotonic()
    done = SETTLED_PHASES_BY_KIND[body["kind"]]
    limit = timeout if wait else ANSWER_TIMEOUT
    received = False
    while True:
        remaining = limit - (time.monotonic() - start)
        if remaining <= 0:
            if received and not wait:
                return 0  # intake took it; policy's answer shows in `berth describe`
            if not wait:
                err.print("[yellow]submitted, but intake has not answered yet[/yellow]")
                err.print("see `berth describe` for the outcome")
            else:
                err.print(f"[yellow]timed out after {timeout:.0f}s[/yellow]")
            return 3
        try:
            event = await asyncio.wait_for(events.get(), remaining)
        except TimeoutError:
            continue
        at = f"{time.monotonic() - start:6.1f}s  " if wait else ""
        if isinstance(event, SubmissionRejectedV1):
            return await _rejected(client, body, "intake", event.data.issues, at)
        if isinstance(event, PolicyRejectedV1):
            return await _rejected(client, body, "policy", event.data.complianceIssues, at)
        if isinstance(event, SubmissionReceivedV1):
            ref = event.data.workload
            if out == Format.name:
                print(ref.name)
            elif not verbosity.quiet:
                console.print(
                    f"{at}submitted {ref.kind} [bold]{escape(ref.name)}[/bold] in project "
                    f"{escape(ref.project)}",
                    highlight=False,
                )
                if verbosity.verbose or wait:
                    console.print(f"        workload id {ref.workloadId}")
                    console.print(f"        trace id    {trace_id}")
            received = True
        elif isinstance(event, PolicyApprovedV1):
            if not wait:
                return 0
            say(f"{at}approved")
        elif isinstance(event, WorkloadScheduledV1):
            objects = ", ".join(f"{o.kind}/{o.name}" for o in event.data.objects)
            say(f"{at}scheduled ({escape(objects)})")
        elif isinstance(event, WorkloadPhaseChangedV1):
            # One event may report several transitions: each is shown, its own phase last.
            for transition in event.transitions():
                say(f"{at}{output.phase(transition.phase)}{output.detail(transition.model_dump())}")
            phase = event.data.phase
            if phase in done:
                return 0 if phase in SUCCESS else 1


async def _rejected(
    client: BerthClient, body: dict[str, Any], who: str, found: list[Issue], at: str
) -> int:
    from rich.markup import escape

    from berth.cli import output

    issues = [i.model_dump() for i in found]
    await _explain(client, body, issues)
    err.print(f"{at}[red]rejected[/red] by {who}: {escape(body['kind'])} {escape(body['name'])}")
    output.issues(err, issues)
    return 1


async def _explain(client: BerthClient, body: dict[str, Any], issues: list[dict[str, Any]]) -> None:
    """Add "did you mean" to issues about a project or asset that does not exist."""
    import re

    from berth.cli import suggest

    for issue in issues:
        details = str(issue.get("details"))
        if issue.get("field") == "projectId" and "does not exist" in details:
            hint = await suggest.project_hint(client, body["projectId"])
        else:
            # Intake names a missing asset as: <kind> "<name>" does not exist.
            missing = re.match(r'^(\w+) "([^"]+)" does not exist$', details)
            if missing is None or missing.group(1) not in _ASSET_KINDS:
                continue
            names = await suggest.asset_names(client, missing.group(1))
            hint = suggest.closest(missing.group(2), names)
        if hint:
            issue["details"] = f"{details}{hint}"


_ASSET_KINDS = frozenset({"template", "environment", "compute", "datasource", "credential"})


# --- registering the commands ----------------------------------------------------------------

_KINDS = {
    "workspace": "Submit a workspace. An interactive notebook or IDE that runs until stopped.",
    "training": "Submit a training. It runs on one node to completion.",
    "inference": "Submit an inference service. With its serving port and autoscaling.",
}
_DISTRIBUTED_DOC = (
    "Submit a distributed {name} training. A master and --workers workers "
    "(--no-master: workers only); --master-* flags give the master its own settings."
)
_FRAMEWORK_NAMES = {"pytorch": "PyTorch", "tf": "TensorFlow", "mpi": "MPI", "xgboost": "XGBoost"}


def _submitter(kind: str, framework: str | None = None) -> Any:
    def body(values: dict[str, Any]) -> None:
        _run(kind, values, framework)

    doc = _DISTRIBUTED_DOC.format(name=_FRAMEWORK_NAMES[framework]) if framework else _KINDS[kind]
    return command(_options(kind, framework), body, doc, f"submit_{framework or kind}")


OLD_FRAMEWORK = Opt(
    "framework", ("--framework",), str | None, "pytorch, tf, mpi or xgboost.", "NAME", hidden=True
)


def _older(kind: str) -> Any:
    """``berth submit <kind>``: as before, ``training --workers/--framework`` is distributed."""
    if kind != "training":
        return _submitter(kind)

    def body(values: dict[str, Any]) -> None:
        framework = values.pop("framework", None)
        if values.get("workers") is not None or framework is not None:
            _run("distributed", values, (framework or "pytorch").lower())
        _run("training", values)

    opts = [*_options("training"), WORKERS.but(hidden=True), OLD_FRAMEWORK]
    return command(opts, body, _KINDS["training"], "submit_training")


def register(app: typer.Typer) -> None:
    """``berth workspace|training|inference submit``, ``berth training <framework> submit`` and
    the older ``berth submit <kind>``."""
    older = typer.Typer(
        rich_markup_mode=None,
        help="Submit a workload. The older spelling of `berth <kind> submit`.",
        no_args_is_help=True,
    )
    for kind, doc in _KINDS.items():
        what = "submit, or `berth training pytorch submit`" if kind == "training" else "submit"
        group = typer.Typer(
            rich_markup_mode=None, help=f"{kind.capitalize()}s: {what}.", no_args_is_help=True
        )
        group.command("submit", help=doc)(_submitter(kind))
        older.command(kind, help=doc)(_older(kind))
        if kind == "training":
            for framework in FRAMEWORKS:
                sub = typer.Typer(
                    rich_markup_mode=None,
                    help=f"Distributed {_FRAMEWORK_NAMES[framework]} trainings.",
                    no_args_is_help=True,
                )
                distributed = _submitter("distributed", framework)
                sub.command("submit", help=distributed.__doc__)(distributed)
                group.add_typer(sub, name=framework)
            older.command("distributed", help="Submit a distributed training (PyTorch).")(
                _submitter("distributed", "pytorch")
            )
        app.add_typer(group, name=kind)
    app.add_typer(older, name="submit")
