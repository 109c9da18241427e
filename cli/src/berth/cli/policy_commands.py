"""`berth policy`: apply, patch, get, delete workload policies and read the effective policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.table import Table

from berth.cli.client import BerthClient
from berth.cli.common import AsOpt, NatsOpt, as_actor, console, err, with_client
from berth.contracts.policy import (
    EffectivePolicy,
    PolicyApplyRequest,
    PolicyDeleteRequest,
    PolicyDocument,
    PolicyEffectiveRequest,
    PolicyGetRequest,
    PolicyMeta,
    PolicyPatchRequest,
    PolicyReply,
    PolicyScope,
    PolicyType,
)
from berth.contracts.subjects import (
    RPC_POLICY_APPLY,
    RPC_POLICY_DELETE,
    RPC_POLICY_EFFECTIVE,
    RPC_POLICY_GET,
    RPC_POLICY_PATCH,
    RPC_POLICY_VALIDATE,
)

policy_app = typer.Typer(
    help="Workload policies: defaults, rules and imposed data sources per type and scope.",
    no_args_is_help=True,
)

TypeOpt = Annotated[
    PolicyType, typer.Option("--type", "-t", help="workspace, training, distributed or inference")
]
ScopeOpt = Annotated[
    PolicyScope, typer.Option("--scope", "-s", help="tenant, cluster, department or project")
]
ProjectOpt = Annotated[str | None, typer.Option("--project", "-p", help="Project name.")]
DepartmentOpt = Annotated[str | None, typer.Option("--department", help="Department name.")]
ClusterOpt = Annotated[str | None, typer.Option("--cluster", help="Cluster id.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Display name of the policy.")]
FileOpt = Annotated[
    Path, typer.Option("--file", "-f", help="YAML or JSON: defaults, rules, imposedAssets.")
]
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="table (or yaml) or json")]


def _meta(
    scope: PolicyScope,
    project: str | None,
    department: str | None,
    cluster: str | None,
    name: str | None = None,
) -> PolicyMeta:
    needed = {"project": project, "department": department, "cluster": cluster}
    if scope != "tenant" and not needed[scope]:
        err.print(f"[red]error:[/red] --scope {scope} needs --{scope}")
        raise typer.Exit(2)
    try:
        return PolicyMeta(
            name=name,
            scope=scope,
            projectId=project if scope == "project" else None,
            departmentId=department if scope in ("project", "department") else None,
            clusterId=cluster,
        )
    except ValidationError as exc:
        err.print(f"[red]error:[/red] {exc.errors()[0]['msg']}")
        raise typer.Exit(2) from None


def _document(path: Path) -> PolicyDocument:
    try:
        raw = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        err.print(f"[red]error:[/red] cannot read {path}: {exc}")
        raise typer.Exit(2) from None
    # A Run:ai-style envelope ({meta, policy}) is accepted too; the flags give the scope.
    if isinstance(raw, dict) and "policy" in raw:
        raw = raw["policy"]
    try:
        return PolicyDocument.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            err.print(f"[red]error:[/red] {path}: {where}: {error['msg']}")
        raise typer.Exit(2) from None


def _fail_on_issues(reply: PolicyReply, out: str, what: str) -> None:
    if reply.ok:
        return
    if out == "json":
        print(reply.model_dump_json(indent=2))
    else:
        err.print(f"[red]{what}:[/red]")
        for issue in reply.issues:
            err.print(f"  - [bold]{issue.field}[/bold]: {issue.details}")
    raise typer.Exit(1)


@policy_app.command()
def apply(
    file: FileOpt,
    policy_type: TypeOpt,
    scope: ScopeOpt,
    project: ProjectOpt = None,
    department: DepartmentOpt = None,
    cluster: ClusterOpt = None,
    name: NameOpt = None,
    validate_only: Annotated[
        bool, typer.Option("--validate-only", help="Check the policy; store nothing.")
    ] = False,
    out: OutputOpt = "table",
    as_email: AsOpt = None,
    nats_url: NatsOpt = None,
) -> None:
    """Replace the policy of a workload type at a scope (every problem is named by its path)."""
    meta = _meta(scope, project, department, cluster, name)
    document = _document(file)

    async def go(client: BerthClient) -> None:
        request = PolicyApplyRequest(
            actor=client.actor, type=policy_type, meta=meta, policy=document
        )
        subject = RPC_POLICY_VALIDATE if validate_only else RPC_POLICY_APPLY
        reply: PolicyReply = await client.request(subject, request, PolicyReply)
        _fail_on_issues(reply, out, "policy refused")
        if out == "json":
            print(reply.model_dump_json(indent=2))
        elif validate_only:
            console.print(f"{policy_type} policy for {meta.ref} is valid (not saved)")
        else:
            version = reply.policy.version if reply.policy else "?"
            console.print(f"applied {policy_type} policy for {meta.ref} (version {version})")

    with_client(nats_url, as_actor(as_email), go)


@policy_app.command()
def patch(
    policy_type: TypeOpt,
    scope: ScopeOpt,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Defaults/rules to merge.")
    ] = None,
    reset: Annotated[
        list[str] | None, typer.Option("--reset", help="Field path to clear (repeat).")
    ] = None,
    project: ProjectOpt = None,
    department: DepartmentOpt = None,
    cluster: ClusterOpt = None,
    out: OutputOpt = "table",
    as_email: AsOpt = None,
    nats_url: NatsOpt = None,
) -> None:
    """Merge into a stored policy after clearing the --reset paths."""
    meta = _meta(scope, project, department, cluster)
    document = _document(file) if file else PolicyDocument()

    async def go(client: BerthClient) -> None:
        request = PolicyPatchRequest(
            actor=client.actor, type=policy_type, meta=meta, policy=document, reset=reset or []
        )
        reply: PolicyReply = await client.request(RPC_POLICY_PATCH, request, PolicyReply)
        _fail_on_issues(reply, out, "patch refused")
        if out == "json":
            print(reply.model_dump_json(indent=2))
        else:
            version = reply.policy.version if reply.policy else "?"
            console.print(f"patched {policy_type} policy for {meta.ref} (version {version})")

    with_client(nats_url, as_actor(as_email), go)


@policy_app.command()
def get(
    policy_type: TypeOpt,
    scope: ScopeOpt,
    project: ProjectOpt = None,
    department: DepartmentOpt = None,
    cluster: ClusterOpt = None,
    out: OutputOpt = "yaml",
    nats_url: NatsOpt = None,
) -> None:
    """Show the policy stored at one scope (not what it inherits: see `berth policy effective`)."""
    meta = _meta(scope, project, department, cluster)

    async def go(client: BerthClient) -> None:
        request = PolicyGetRequest(type=policy_type, meta=meta)
        reply: PolicyReply = await client.request(RPC_POLICY_GET, request, PolicyReply)
        _fail_on_issues(reply, out, "not found")
        assert reply.policy is not None
        if out == "json":
            print(reply.policy.model_dump_json(indent=2))
        else:
            body = reply.policy.model_dump(mode="json", exclude_none=True)
            print(yaml.safe_dump(body, sort_keys=False), end="")

    with_client(nats_url, None, go)


@policy_app.command()
def delete(
    policy_type: TypeOpt,
    scope: ScopeOpt,
    project: ProjectOpt = None,
    department: DepartmentOpt = None,
    cluster: ClusterOpt = None,
    out: OutputOpt = "table",
    as_email: AsOpt = None,
    nats_url: NatsOpt = None,
) -> None:
    """Delete the policy of a workload type at a scope."""
    meta = _meta(scope, project, department, cluster)

    async def go(client: BerthClient) -> None:
        request = PolicyDeleteRequest(actor=client.actor, type=policy_type, meta=meta)
        reply: PolicyReply = await client.request(RPC_POLICY_DELETE, request, PolicyReply)
        _fail_on_issues(reply, out, "not deleted")
        if out == "json":
            print(reply.model_dump_json(indent=2))
        else:
            console.print(f"deleted {policy_type} policy for {meta.ref}")

    with_client(nats_url, as_actor(as_email), go)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))


def effective_table(effective: EffectivePolicy) -> Table:
    table = Table("FIELD", "DEFAULT", "RULE", "SOURCE", title=f"effective {effective.type} policy")
    by_field: dict[str, list[tuple[str, str, str]]] = {}
    for d in effective.defaults:
        by_field.setdefault(d.field, []).append((_show(d.value), "", str(d.source)))
    for r in effective.rules:
        source = ", ".join(str(s) for s in [r.source, *r.alsoFrom])
        by_field.setdefault(r.field, []).append(("", _show(r.rule), source))
    for name in sorted(by_field):
        for default, rule, source in by_field[name]:
            table.add_row(name, default, rule, source)
    for asset in effective.imposedAssets:
        table.add_row(
            f"imposedAssets[{asset.asset.id}]",
            _show(asset.asset.source),
            "imposed",
            str(asset.source),
        )
    return table


@policy_app.command()
def effective(
    project: Annotated[str, typer.Option("--project", "-p", help="Project name.")],
    policy_type: TypeOpt,
    out: OutputOpt = "table",
    nats_url: NatsOpt = None,
) -> None:
    """The policy that governs a project's workloads, each default and rule with its source."""

    async def go(client: BerthClient) -> None:
        request = PolicyEffectiveRequest(type=policy_type, projectId=project)
        reply: PolicyReply = await client.request(RPC_POLICY_EFFECTIVE, request, PolicyReply)
        _fail_on_issues(reply, out, "no effective policy")
        assert reply.effective is not None
        if out == "json":
            print(reply.effective.model_dump_json(indent=2))
        else:
            branch = " → ".join(str(ref) for ref in reply.effective.branch)
            console.print(f"scopes: {branch}")
            if not reply.effective.defaults and not reply.effective.rules:
                console.print("no policy applies (system defaults only)")
            else:
                console.print(effective_table(reply.effective))

    with_client(nats_url, None, go)
