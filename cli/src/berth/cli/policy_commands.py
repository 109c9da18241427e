"""`berth policy`: apply, patch, get, delete workload policies and read the effective policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import typer

from berth.cli.common import (
    AsOpt,
    Format,
    NatsOpt,
    OutputOpt,
    as_actor,
    choice,
    console,
    err,
    fail,
    with_client,
)
from berth.contracts.subjects import (
    RPC_POLICY_APPLY,
    RPC_POLICY_DELETE,
    RPC_POLICY_EFFECTIVE,
    RPC_POLICY_GET,
    RPC_POLICY_PATCH,
    RPC_POLICY_VALIDATE,
)
from berth.contracts.workload_kinds import WorkloadKind

if TYPE_CHECKING:
    from rich.table import Table

    from berth.cli.client import BerthClient
    from berth.contracts.policy import (
        EffectivePolicy,
        PolicyDocument,
        PolicyMeta,
        PolicyReply,
        ScopeRef,
    )

# The same choices as berth.contracts.policy's, spelled here so that parsing needs no pydantic.
PolicyType = WorkloadKind
PolicyScope = Literal["tenant", "cluster", "department", "project"]

policy_app = typer.Typer(
    rich_markup_mode=None,
    help="Workload policies. Defaults, rules and imposed data sources per type and scope.",
    no_args_is_help=True,
)

TypeOpt = Annotated[
    str,
    typer.Option(
        "--type",
        "-t",
        metavar="TYPE",
        help="workspace, training, distributed or inference.",
        callback=choice(*get_args(PolicyType)),
    ),
]
ScopeOpt = Annotated[
    str,
    typer.Option(
        "--scope",
        "-s",
        metavar="SCOPE",
        help="tenant, cluster, department or project.",
        callback=choice(*get_args(PolicyScope)),
    ),
]
ProjectOpt = Annotated[
    str | None, typer.Option("--project", "-p", metavar="PROJECT", help="Project name.")
]
DepartmentOpt = Annotated[
    str | None, typer.Option("--department", metavar="DEPARTMENT", help="Department name.")
]
ClusterOpt = Annotated[str | None, typer.Option("--cluster", metavar="CLUSTER", help="Cluster id.")]
NameOpt = Annotated[
    str | None, typer.Option("--name", metavar="NAME", help="Display name of the policy.")
]
FileOpt = Annotated[
    Path,
    typer.Option(
        "--file", "-f", metavar="FILE", help="YAML or JSON: defaults, rules, imposedAssets."
    ),
]


def _meta(
    scope: str,
    project: str | None,
    department: str | None,
    cluster: str | None,
    name: str | None = None,
) -> PolicyMeta:
    from pydantic import ValidationError

    from berth.contracts.issues import issues_from
    from berth.contracts.policy import PolicyMeta

    needed = {"project": project, "department": department, "cluster": cluster}
    if scope != "tenant" and not needed[scope]:
        raise fail(f"--scope {scope} needs --{scope}", 2)
    try:
        return PolicyMeta(
            name=name,
            scope=scope,  # type: ignore[arg-type]
            projectId=project if scope == "project" else None,
            departmentId=department if scope in ("project", "department") else None,
            clusterId=cluster,
        )
    except ValidationError as exc:
        issue = issues_from(exc, drop=())[0]
        raise fail(f"{issue.field}: {issue.details}", 2) from None


def _document(path: Path) -> PolicyDocument:
    import yaml
    from pydantic import ValidationError

    from berth.contracts.issues import issues_from
    from berth.contracts.policy import PolicyDocument

    try:
        raw = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise fail(f"cannot read {path}: {exc}", 2) from None
    # A Run:ai-style envelope ({meta, policy}) is accepted too; the flags give the scope.
    if isinstance(raw, dict) and "policy" in raw:
        raw = raw["policy"]
    try:
        return PolicyDocument.model_validate(raw)
    except ValidationError as exc:
        from rich.markup import escape

        for issue in issues_from(exc, drop=()):
            err.print(f"[red]error:[/red] {escape(f'{path}: {issue.field}: {issue.details}')}")
        raise typer.Exit(2) from None


def _fail_on_issues(reply: PolicyReply, out: str, what: str) -> None:
    if reply.ok:
        return
    if out in (Format.json, Format.yaml):
        _emit(reply.model_dump(mode="json", exclude_none=True), out)
    else:
        from berth.cli import output

        err.print(f"[red]{what}:[/red]")
        output.issues(err.get(), [i.model_dump() for i in reply.issues])
    raise typer.Exit(1)


def _emit(data: Any, out: str) -> None:
    from berth.cli import output

    output.emit(data, out)


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
        bool, typer.Option("--validate-only", metavar="", help="Check the policy; store nothing.")
    ] = False,
    out: OutputOpt = "table",
    as_email: AsOpt = None,
    nats_url: NatsOpt = None,
) -> None:
    """Replace a policy. Of a workload type at a scope; every problem is named by its path."""
    meta = _meta(scope, project, department, cluster, name)
    document = _document(file)

    async def go(client: BerthClient) -> None:
        from berth.contracts.policy import PolicyApplyRequest, PolicyReply

        request = PolicyApplyRequest(
            actor=client.actor, type=policy_type, meta=meta, policy=document
        )
        subject = RPC_POLICY_VALIDATE if validate_only else RPC_POLICY_APPLY
        reply: PolicyReply = await client.request(subject, request, PolicyReply)
        _fail_on_issues(reply, out, "policy refused")
        _show_saved(reply, out, policy_type, meta.ref, "applied" if not validate_only else None)

    with_client(nats_url, as_actor(as_email), go)


def _show_saved(
    reply: PolicyReply, out: str, policy_type: str, ref: ScopeRef, verb: str | None
) -> None:
    """What an apply or a patch did (``verb``; None: only validated), in the asked format."""
    what = f"{policy_type} policy for {ref}"
    if out in (Format.json, Format.yaml):
        _emit(reply.model_dump(mode="json", exclude_none=True), out)
    elif out == Format.name:
        print(ref)
    elif verb is None:
        console.print(f"{what} is valid (not saved)", markup=False)
    else:
        version = reply.policy.version if reply.policy else "?"
        console.print(f"{verb} {what} (version {version})", markup=False)


@policy_app.command()
def patch(
    policy_type: TypeOpt,
    scope: ScopeOpt,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", metavar="FILE", help="Defaults/rules to merge.")
    ] = None,
    reset: Annotated[
        list[str] | None,
        typer.Option("--reset", metavar="PATH", help="Field path to clear (repeat)."),
    ] = None,
    project: ProjectOpt = None,
    department: DepartmentOpt = None,
    cluster: ClusterOpt = None,
    out: OutputOpt = "table",
    as_email: AsOpt = None,
    nats_url: NatsOpt = None,
) -> None:
    """Merge into a stored policy. After clearing the --reset paths."""
    from berth.contracts.policy import PolicyDocument

    meta = _meta(scope, project, department, cluster)
    document = _document(file) if file else PolicyDocument()

    async def go(client: BerthClient) -> None:
        from berth.contracts.policy import PolicyPatchRequest, PolicyReply

        request = PolicyPatchRequest(
            actor=client.actor, type=policy_type, meta=meta, policy=document, reset=reset or []
        )
        reply: PolicyReply = await client.request(RPC_POLICY_PATCH, request, PolicyReply)
        _fail_on_issues(reply, out, "patch refused")
        _show_saved(reply, out, policy_type, meta.ref, "patched")

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
    """Show a stored policy. Of one scope, not what it inherits (`berth policy effective`)."""
    meta = _meta(scope, project, department, cluster)

    async def go(client: BerthClient) -> None:
        from berth.contracts.policy import PolicyGetRequest, PolicyReply

        request = PolicyGetRequest(type=policy_type, meta=meta)
        reply: PolicyReply = await client.request(RPC_POLICY_GET, request, PolicyReply)
        _fail_on_issues(reply, out, "not found")
        assert reply.policy is not None
        body = reply.policy.model_dump(mode="json", exclude_none=True)
        if out == Format.name:
            print(meta.ref)
        else:
            # A policy is a document: the table form is its YAML.
            _emit(body, Format.json if out == Format.json else Format.yaml)

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
        from berth.contracts.policy import PolicyDeleteRequest, PolicyReply

        request = PolicyDeleteRequest(actor=client.actor, type=policy_type, meta=meta)
        reply: PolicyReply = await client.request(RPC_POLICY_DELETE, request, PolicyReply)
        _fail_on_issues(reply, out, "not deleted")
        if out in (Format.json, Format.yaml):
            _emit(reply.model_dump(mode="json", exclude_none=True), out)
        elif out == Format.name:
            print(meta.ref)
        else:
            console.print(f"deleted {policy_type} policy for {meta.ref}", markup=False)

    with_client(nats_url, as_actor(as_email), go)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))


def effective_table(effective: EffectivePolicy) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table("FIELD", "DEFAULT", "RULE", "SOURCE", title=f"effective {effective.type} policy")
    by_field: dict[str, list[tuple[str, str, str]]] = {}
    for d in effective.defaults:
        by_field.setdefault(d.field, []).append((_show(d.value), "", str(d.source)))
    for r in effective.rules:
        source = ", ".join(str(s) for s in [r.source, *r.alsoFrom])
        by_field.setdefault(r.field, []).append(("", _show(r.rule), source))
    for name in sorted(by_field):
        for default, rule, source in by_field[name]:
            table.add_row(Text(name), Text(default), Text(rule), Text(source))
    for asset in effective.imposedAssets:
        table.add_row(
            Text(f"imposedAssets[{asset.asset.id}]"),
            Text(_show(asset.asset.source)),
            "imposed",
            Text(str(asset.source)),
        )
    return table


@policy_app.command()
def effective(
    policy_type: TypeOpt,
    project: ProjectOpt = None,
    out: OutputOpt = "table",
    nats_url: NatsOpt = None,
) -> None:
    """Show a project's effective policy. Each default and rule with its source."""
    from berth.cli.common import project_or_default

    chosen = project_or_default(project)

    async def go(client: BerthClient) -> None:
        from berth.contracts.policy import PolicyEffectiveRequest, PolicyReply

        request = PolicyEffectiveRequest(type=policy_type, projectId=chosen)
        reply: PolicyReply = await client.request(RPC_POLICY_EFFECTIVE, request, PolicyReply)
        _fail_on_issues(reply, out, "no effective policy")
        assert reply.effective is not None
        if out in (Format.json, Format.yaml):
            _emit(reply.effective.model_dump(mode="json", exclude_none=True), out)
        elif out == Format.name:
            for rule in reply.effective.rules:
                print(rule.field)
        else:
            branch = " → ".join(str(ref) for ref in reply.effective.branch)
            console.print(f"scopes: {branch}", markup=False)
            if not reply.effective.defaults and not reply.effective.rules:
                console.print("no policy applies (system defaults only)")
            else:
                console.print(effective_table(reply.effective))

    with_client(nats_url, None, go)
