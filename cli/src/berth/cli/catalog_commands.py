"""``berth department|project|nodepool|environment|compute|datasource|credential|template``:
create (or ``--update``), list, describe and delete catalog entries over request-reply.

Like submissions, the CLI checks little itself: the catalog names every bad field. Credential
values are read from environment variables (``--value KEY=ENVVAR``) so that they show neither in
the shell history nor in the process list; they travel only in the create request.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.table import Table

from berth.cli.client import BerthClient
from berth.cli.common import (
    AsOpt,
    NatsOpt,
    OutputOpt,
    as_actor,
    console,
    err,
    with_client,
)
from berth.cli.sealing import seal_values
from berth.cli.submission import key_values
from berth.contracts.catalog import (
    AssetDeleteRequest,
    AssetListReply,
    AssetListRequest,
    AssetPutRequest,
    AssetRef,
    AssetReply,
    AssetView,
)
from berth.contracts.subjects import (
    RPC_CATALOG_ASSETS_DELETE,
    RPC_CATALOG_ASSETS_GET,
    RPC_CATALOG_ASSETS_LIST,
    RPC_CATALOG_ASSETS_PUT,
)

ScopeOpt = Annotated[str, typer.Option("--scope", help="tenant, cluster, department or project.")]
ScopeNameOpt = Annotated[
    str, typer.Option("--scope-name", help="The cluster, department or project of the scope.")
]
UpdateOpt = Annotated[bool, typer.Option("--update", help="Change an existing one.")]
StatusOpt = Annotated[
    str | None,
    typer.Option(
        "--status",
        help='Cluster status ("No issues found", "Issues found", "No status", "syncing"); '
        "reported by the cluster side, settable for a simulated cluster.",
    ),
]


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _show(view: AssetView, used_by: list[str], out: str) -> None:
    if out == "json":
        print(json.dumps({**view.model_dump(mode="json"), "usedBy": used_by}, indent=2))
        return
    scope = view.scope + (f" {view.scopeName}" if view.scopeName else "")
    console.print(f"[bold]{view.kind} {view.name}[/bold]  ({scope}, id {view.id})")
    if view.status:
        reason = f": {view.statusReason}" if view.statusReason else ""
        console.print(f"status: {view.status}{reason}")
    console.print_json(json.dumps(view.spec))
    if used_by:
        console.print(f"used by: {', '.join(used_by)}")


def _summary(view: AssetView) -> str:
    spec = view.spec
    if view.kind == "environment":
        return f"{spec.get('image', '')}  ({', '.join(spec.get('workloadSupportedTypes', []))})"
    if view.kind == "datasource":
        return str(spec.get("type", ""))
    if view.kind == "credential":
        return f"{spec.get('type', '')} -> secret {spec.get('secretName', '')}"
    if view.kind == "template":
        parts = [spec.get("environment"), spec.get("compute"), *spec.get("dataSources", [])]
        return ", ".join(p for p in parts if p)
    if view.kind == "project":
        return f"namespace {spec.get('namespace')}, queue {spec.get('queue')}"
    return ", ".join(f"{k}={v}" for k, v in spec.items() if not isinstance(v, (dict, list)))


def _put(
    kind: str,
    name: str,
    spec: dict[str, Any],
    *,
    scope: str = "tenant",
    scope_name: str = "",
    update: bool = False,
    status: str | None = None,
    status_reason: str = "",
    secret_values: dict[str, str] | None = None,
    out: str = "table",
    as_email: str | None = None,
    nats_url: str | None = None,
) -> None:
    actor = as_actor(as_email)
    try:
        request = AssetPutRequest(
            actor=actor,
            kind=kind,  # type: ignore[arg-type]
            name=name,
            scope=scope,  # type: ignore[arg-type]
            scopeName=scope_name,
            spec=spec,
            status=status,  # type: ignore[arg-type]
            statusReason=status_reason,
            update=update,
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None

    async def go(client: BerthClient) -> None:
        put = request
        if secret_values:
            key_id, sealed = await seal_values(client, secret_values)
            put = request.model_copy(update={"sealedValues": sealed, "keyId": key_id})
        reply: AssetReply = await client.request(RPC_CATALOG_ASSETS_PUT, put, AssetReply)
        if reply.error or reply.asset is None:
            err.print(f"[red]refused:[/red] {reply.error}")
            raise typer.Exit(1)
        if out == "json":
            _show(reply.asset, [], out)
        else:
            console.print(f"{kind} {name} {'updated' if update else 'created'}")

    with_client(nats_url, actor, go)


def _ref(kind: str, name: str, scope: str | None, scope_name: str) -> AssetRef:
    return AssetRef(kind=kind, name=name, scope=scope, scopeName=scope_name)  # type: ignore[arg-type]


def _read_commands(group: typer.Typer, kind: str) -> None:
    @group.command("list")
    def list_(
        search: Annotated[
            str | None, typer.Option("--search", "-s", help="Part of the name.")
        ] = None,
        project: Annotated[
            str | None, typer.Option("--project", "-p", help="Only what this project sees.")
        ] = None,
        out: OutputOpt = "table",
        nats_url: NatsOpt = None,
    ) -> None:
        async def go(client: BerthClient) -> None:
            reply: AssetListReply = await client.request(
                RPC_CATALOG_ASSETS_LIST,
                AssetListRequest(kind=kind, search=search, project=project),  # type: ignore[arg-type]
                AssetListReply,
            )
            if out == "json":
                print(json.dumps([a.model_dump(mode="json") for a in reply.assets], indent=2))
                return
            table = Table("NAME", "SCOPE", "STATUS", "DETAILS")
            for a in reply.assets:
                scope = a.scope + (f" {a.scopeName}" if a.scopeName else "")
                status: str = a.status or ""
                if a.statusReason:
                    status += f": {a.statusReason}"
                table.add_row(a.name, scope, status, _summary(a))
            console.print(table)

        with_client(nats_url, as_actor(None), go)

    list_.__doc__ = f"List {kind}s (search by name; only what a project sees with --project)."

    @group.command()
    def describe(
        name: str,
        scope: Annotated[str | None, typer.Option("--scope", help="When in several.")] = None,
        scope_name: ScopeNameOpt = "",
        out: OutputOpt = "table",
        nats_url: NatsOpt = None,
    ) -> None:
        async def go(client: BerthClient) -> None:
            reply: AssetReply = await client.request(
                RPC_CATALOG_ASSETS_GET, _ref(kind, name, scope, scope_name), AssetReply
            )
            if reply.asset is None:
                err.print(f"[red]error:[/red] {reply.error}")
                raise typer.Exit(1)
            _show(reply.asset, reply.usedBy, out)

        with_client(nats_url, as_actor(None), go)

    describe.__doc__ = f"Show a {kind} and who uses it."

    @group.command()
    def delete(
        name: str,
        scope: Annotated[str | None, typer.Option("--scope", help="When in several.")] = None,
        scope_name: ScopeNameOpt = "",
        out: OutputOpt = "table",
        as_email: AsOpt = None,
        nats_url: NatsOpt = None,
    ) -> None:
        actor = as_actor(as_email)

        async def go(client: BerthClient) -> None:
            request = AssetDeleteRequest(actor=actor, ref=_ref(kind, name, scope, scope_name))
            reply: AssetReply = await client.request(RPC_CATALOG_ASSETS_DELETE, request, AssetReply)
            if out == "json":
                print(reply.model_dump_json(indent=2))
            if reply.error:
                if out != "json":
                    err.print(f"[red]refused:[/red] {reply.error}")
                raise typer.Exit(1)
            if out != "json":
                console.print(f"{kind} {name} deleted")

        with_client(nats_url, actor, go)

    delete.__doc__ = f"Delete a {kind}; refused while a workload or template uses it."


# --- create commands, one per kind -------------------------------------------------------------


def _quota(items: list[str] | None) -> list[dict[str, Any]]:
    """``POOL:gpu=2,cpu=8,memory=32,weight=High`` -> a node pool quota."""
    quotas = []
    for item in items or []:
        pool, _, rest = item.partition(":")
        entry: dict[str, Any] = {"nodePool": pool}
        weight = None
        for part in _split(rest):
            key, _, value = part.partition("=")
            if key == "weight":
                weight = value
            elif key in ("gpu", "cpu", "memory"):
                entry[key] = {"deserved": float(value)}
            else:
                raise typer.BadParameter(f"--quota takes gpu, cpu, memory, weight; got {key!r}")
        if weight:
            for key in ("gpu", "cpu", "memory"):
                entry.setdefault(key, {"deserved": 0})["overQuotaWeight"] = weight
        quotas.append(entry)
    return quotas


QuotaOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--quota",
        help="Per node pool: POOL:gpu=N,cpu=N,memory=GB,weight=None|Lowest|Low|Medium|High "
        "(repeat).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add every catalog command group to the ``berth`` app."""
    groups = {
        kind: typer.Typer(help=text, no_args_is_help=True)
        for kind, text in (
            ("department", "Departments: groups of projects."),
            ("project", "Projects: namespace, scheduler queue, node pools and quota."),
            ("nodepool", "Node pools of a cluster."),
            ("environment", "Environments: image, tools, runtime settings."),
            ("compute", "Compute resources: GPUs, CPU, memory."),
            ("datasource", "Data sources: PVC, Git, ConfigMap, S3, NFS, host path, secret."),
            ("credential", "Credentials: their values go only to the cluster."),
            ("template", "Workload templates: assets plus specific values."),
        )
    }
    for kind, group in groups.items():
        app.add_typer(group, name=kind)

    @groups["department"].command("create")
    def department_create(
        name: str,
        cluster: Annotated[str | None, typer.Option("--cluster")] = None,
        quota: QuotaOpt = None,
        update: UpdateOpt = False,
        out: OutputOpt = "table",
        as_email: AsOpt = None,
        nats_url: NatsOpt = None,
    ) -> None:
        """Create a department."""
        spec: dict[str, Any] = {"quota": _quota(quota)}
        if cluster:
            spec["clusterId"] = cluster
        _put("department", name, spec, update=update, out=out, as_email=as_email, nats_url=nats_url)

    @groups["project"].command("create")
    def project_create(
        name: str,
        department: Annotated[str | None, typer.Option("--department", "-d")] = None,
        cluster: Annotated[str | None, typer.Option("--cluster")] = None,
        namespace: Annotated[str | None, typer.Option("--namespace")] = None,
        queue: Annotated[str | None, typer.Option("--queue")] = None,
        node_pools: Annotated[
            str | None, typer.Option("--node-pools", help="Default node pools, comma-separated.")
        ] = None,
        quota: QuotaOpt = None,
        update: UpdateOpt = False,
        out: OutputOpt = "table",
        as_email: AsOpt = None,
        nats_url: NatsOpt = None,
    ) -> None:
        """Create a project."""
        spec: dict[str, Any] = {"defaultNodePools": _split(node_pools), "quota": _quota(quota)}
        for key, value in (
            ("department", department),
            ("clusterId", cluster),
            ("namespace", namespace),
            ("queue", queue),
        ):
            if value:
                spec[key] = value
        _put("project", name, spec, update=update, out=out, as_email=as_email, nats_url=nats_url)

    @groups["nodepool"].command("create")
    def nodepool_create(
        name: str,
        label_value: Annotated[str | None, typer.Option("--label-value")] = None,
        label_key: Annotated[str, typer.Option("--label-key")] = "kai.scheduler/node-pool",
        placement: Annotated[
            str, typer.Option("--placement", help="binpack or spread")
        ] = "binpack",
        node_types: Annotated[str | None, typer.Option("--node-types")] = None,
        update: UpdateOpt = False,
        out: OutputOpt = "table",
        as_email: AsOpt = None,
        nats_url: NatsOpt = None,
    ) -> None:
        """Create a node pool."""
        spec = {
            "labelKey": label_key,
            "labelValue": label_value or name,
            "placement": placement,
            "nodeTypes": _split(node_types),
        }
        _put("nodepool", name, spec, update=update, out=out, as_email=as_email, nats_url=nats_url)

    @groups["environment"].command("create")
    def environment_create(
        name: str,
        image: Annotated[str, typer.Option("--image", "-i")],
        pull_policy: Annotated[str | None, typer.Option("--pull-policy")] = None,
        command: Annotated[str | None, typer.Option("--command")] = None,
        args: Annotated[str | None, typer.Option("--args")] = None,
        env: Annotated[list[str] | None, typer.Option("--env", "-e", help="NAME=VALUE")] = None,
        uid: Annotated[int | None, typer.Option("--uid")] = None,
        gid: Annotated[int | None, typer.Option("--gid")] = None,
        tool: Annotated[
            list[str] | None,
            typer.Option(
                "--tool",
                help="NAME:TYPE:PORT[:groups=a,b|users=x,y] (repeat); everyone by default.",
            ),
        ] = None,
        supports: Annotated[
            str | None,
            typer.Option("--supports", help="Workload types, e.g. workspace,training."),
        ] = None,
        scope: ScopeOpt = "tenant",
        scope_name: ScopeNameOpt = "",
        update: UpdateOpt = False,
        out: OutputOpt = "table",
        as_email: AsOpt = None,
        nats_url: NatsOpt = None,
    ) -> None:
        """Create an environment."""
        spec: dict[str, Any] = {"image": image}
        for key, value in (
            ("imagePullPolicy", pull_policy),
            ("command", command),
            ("args", args),
            ("runAsUid", uid),
            ("runAsGid", gid),
        ):
            if value is not None:
                spec[key] = value
        if env:
            spec["environmentVariables"] = key_values(env, "--env")
        if tool:
            spec["tools"] = [_tool(t) for t in tool]
        if supports:
            spec["workloadSupportedTypes"] = _split(supports)
        _put(
            "environment",
            name,
            spec,
            scope=scope,
            scope_name=scope_name,
            update=update,
            out=out,
            as_email=as_email,
            nats_url=nats_url,
        )

    @groups["compute"].command("create")
    def compute_create(
        name: str,
        gpu: Annotated[int | None, typer.Option("--gpu", "-g", help="GPU devices.")] = None,
        gpu_portion: Annotated[
            float | None, typer.Option("--gpu-portion", help="Portion of each device.")
        ] = None,
        gpu_memory: Annotated[
            str | None, typer.Option("--gpu-memory", help="GPU memory per device.")
        ] = None,
        cpu: Annotated[float | None, typer.Option("--cpu")] = None,
        memory: Annotated[str | None, typer.Option("--memory")] = None,
        large_shm: Annotated[bool, typer.Option("--large-shm")] = False,
        extended: Annotated[
            list[str] | None, typer.Option("--extended", help="RESOURCE=QUANTITY (repeat).")
        ] = None,
        scope: ScopeOpt = "tenant",
        scope_name: ScopeNameOpt = "",
        update: UpdateOpt = False,
        out: OutputOpt = "table",
        as_email: AsOpt = None,
        nats_url: NatsOpt = None,
    ) -> None:
        """Create a compute resource."""
        spec: dict[str, Any] = {}
        if gpu is not None:
            spec["gpuDevicesRequest"] = gpu
        if gpu_portion is not None:
            spec.update(gpuRequestType="portion", gpuPortionRequest=gpu_portion)
        if gpu_memory is not None:
            spec.update(gpuRequestType="memory", gpuMemoryRequest=gpu_memory)
        if cpu is not None:
            spec["cpuCoreRequest"] = cpu
        if memory is not None:
            spec["cpuMemoryRequest"] = memory
        if large_shm:
            spec["largeShmRequest"] = True
        if extended:
            spec["extendedResources"] = [
                {"resource": kv["name"], "quantity": kv["value"]}
                for kv in key_values(extended, "--extended")
            ]
        _put(
            "compute",
            name,
            spec,
            scope=scope,
            scope_name=scope_name,
            update=update,
            out=out,
            as_email=as_email,
            nats_url=nats_url,
        )

    @groups["datasource"].command("create")
    def datasource_create(
        name: str,
        type_: Annotated[
            str,
            typer.Option("--type", help="pvc, git, configmap, s3, nfs, hostpath or secret."),
        ],
        path: Annotated[
            str | None, typer.Option("--path", help="Container path it is mounted at.")
        ] = None,
        claim_name: Annotated[str | None, typer.Option("--claim-name")] = None,
        new: Annotated[bool, typer.Option("--new", help="pvc: create a new claim.")] = False,
        size: Annotated[str | None, typer.Option("--size", help="pvc: new claim size.")] = None,
        storage_class: Annotated[str | None, typer.Option("--storage-class")] = None,
        repository: Annotated[str | None, typer.Option("--repository")] = None,
        branch: Annotated[str | None, typer.Option("--branch")] = None,
        revision: Annotated[str | None, typer.Option("--revision")] = None,
        bucket: Annotated[str | None, typer.Option("--bucket")] = None,
        url: Annotated[str | None, typer.Option("--url")] = None,
        server: Annotated[str | None, typer.Option("--server", help="nfs server.")] = None,
        source_path: Annotated[
            str | None, typer.Option("--source-path", help="nfs export or host path.")
        ] = None,
        config_map: Annotated[str | None, typer.Option("--config-map")] = None,
        secret: Annotated[str | None, typer.Option("--secret")] = None,
        credential: Annotated[
            str | None, typer.Option("--credential", help="git/s3: credential asset.")
        ] = None,
        status: StatusOpt = None,
        status_reason: Annotated[str, typer.Option("--status-reason")] = "",
        scope: ScopeOpt = "tenant",
        scope_name: ScopeNameOpt = "",
        update: UpdateOpt = False,
        out: OutputOpt = "table",
        as_email: AsOpt = None,
        nats_url: NatsOpt = None,
    ) -> None:
        """Create a data source (e.g. --type pvc --claim-name data --path /data)."""
        volume: dict[str, Any]
        if type_ == "pvc":
            volume = {"path": path, "existingPvc": not new}
            if claim_name:
                volume["claimName"] = claim_name
            if new and (size or storage_class):
                volume["claimInfo"] = {
                    k: v for k, v in (("size", size), ("storageClass", storage_class)) if v
                }
        elif type_ == "git":
            volume = {"repository": repository, "path": path, "branch": branch}
            volume["revision"] = revision
        elif type_ == "s3":
            volume = {"bucket": bucket, "path": path, "url": url}
        elif type_ == "nfs":
            volume = {"server": server, "path": source_path, "mountPath": path}
        elif type_ == "hostpath":
            volume = {"path": source_path, "mountPath": path}
        elif type_ == "configmap":
            volume = {"configMap": config_map, "mountPath": path}
        else:
            volume = {"secret": secret, "mountPath": path}
        spec: dict[str, Any] = {
            "type": type_,
            "volume": {k: v for k, v in volume.items() if v is not None},
        }
        if credential:
            spec["credential"] = credential
        _put(
            "datasource",
            name,
            spec,
            scope=scope,
            scope_name=scope_name,
            update=update,
            status=status,
            status_reason=status_reason,
            out=out,
            as_email=as_email,
            nats_url=nats_url,
        )

    @groups["credential"].command("create")
    def credential_create(
        name: str,
        type_: Annotated[
            str,
            typer.Option(
                "--type",
                help="access-key, password, docker-registry, generic-secret, huggingface-token.",
            ),
        ],
        value: Annotated[
            list[str] | None,
            typer.Option(
                "--value",
                help="KEY=ENVVAR: the key's value is read from that environment variable.",
            ),
        ] = None,
        secret_name: Annotated[
            str | None, typer.Option("--secret-name", help="Kubernetes Secret to create.")
        ] = None,
        keys: Annotated[str | None, typer.Option("--keys", help="generic-secret keys.")] = None,
        scope: ScopeOpt = "tenant",
        scope_name: ScopeNameOpt = "",
        update: UpdateOpt = False,
        out: OutputOpt = "table",
        as_email: AsOpt = None,
        nats_url: NatsOpt = None,
    ) -> None:
        """Create a credential; its values become a Kubernetes Secret on the cluster."""
        values: dict[str, str] = {}
        for pair in key_values(value, "--value"):
            variable = pair["value"]
            if variable not in os.environ:
                # The variable's name only: its value must not show in any message.
                err.print(f"[red]error:[/red] environment variable {variable} is not set")
                raise typer.Exit(2)
            values[pair["name"]] = os.environ[variable]
        spec: dict[str, Any] = {"type": type_, "keys": _split(keys)}
        if secret_name:
            spec["secretName"] = secret_name
        _put(
            "credential",
            name,
            spec,
            scope=scope,
            scope_name=scope_name,
            update=update,
            secret_values=values,
            out=out,
            as_email=as_email,
            nats_url=nats_url,
        )

    @groups["template"].command("create")
    def template_create(
        name: str,
        workload_type: Annotated[
            str | None, typer.Option("--workload-type", help="workspace, training, ...")
        ] = None,
        environment: Annotated[str | None, typer.Option("--environment")] = None,
        compute: Annotated[str | None, typer.Option("--compute")] = None,
        datasource: Annotated[
            list[str] | None, typer.Option("--datasource", help="Data source (repeat).")
        ] = None,
        command: Annotated[str | None, typer.Option("--command")] = None,
        args: Annotated[str | None, typer.Option("--args")] = None,
        env: Annotated[list[str] | None, typer.Option("--env", "-e", help="NAME=VALUE")] = None,
        label: Annotated[list[str] | None, typer.Option("--label")] = None,
        annotation: Annotated[list[str] | None, typer.Option("--annotation")] = None,
        node_pools: Annotated[str | None, typer.Option("--node-pools")] = None,
        allow_over_quota: Annotated[
            bool | None, typer.Option("--allow-over-quota/--within-quota")
        ] = None,
        spec_json: Annotated[
            str | None, typer.Option("--spec-json", help="More specific values, as JSON.")
        ] = None,
        scope: ScopeOpt = "tenant",
        scope_name: ScopeNameOpt = "",
        update: UpdateOpt = False,
        out: OutputOpt = "table",
        as_email: AsOpt = None,
        nats_url: NatsOpt = None,
    ) -> None:
        """Create a workload template: assets plus specific values."""
        values: dict[str, Any] = json.loads(spec_json) if spec_json else {}
        for key, value in (("command", command), ("args", args)):
            if value is not None:
                values[key] = value
        for key, items, flag in (
            ("environmentVariables", env, "--env"),
            ("labels", label, "--label"),
            ("annotations", annotation, "--annotation"),
        ):
            if items:
                values[key] = key_values(items, flag)
        if node_pools:
            values["nodePools"] = _split(node_pools)
        if allow_over_quota is not None:
            values["allowOverQuota"] = allow_over_quota
        spec: dict[str, Any] = {"dataSources": datasource or [], "spec": values}
        for key, value in (
            ("workloadType", workload_type),
            ("environment", environment),
            ("compute", compute),
        ):
            if value:
                spec[key] = value
        _put(
            "template",
            name,
            spec,
            scope=scope,
            scope_name=scope_name,
            update=update,
            out=out,
            as_email=as_email,
            nats_url=nats_url,
        )

    for kind, group in groups.items():
        _read_commands(group, kind)


def _tool(text: str) -> dict[str, Any]:
    """``NAME:TYPE:PORT[:groups=a,b|users=x,y]``."""
    parts = text.split(":", 3)
    if len(parts) < 3 or not parts[2].isdigit():
        raise typer.BadParameter(f"--tool takes NAME:TYPE:PORT[:groups=..|users=..], got {text!r}")
    tool: dict[str, Any] = {"name": parts[0], "toolType": parts[1], "containerPort": int(parts[2])}
    if len(parts) == 4:
        who, _, members = parts[3].partition("=")
        tool["access"] = who
        tool[who] = _split(members)
    return tool
