"""``berth department|project|nodepool|environment|compute|datasource|credential|template``:
create (or ``--update``), list, describe and delete catalog entries over request-reply.

What each kind's ``create`` takes is the table in ``catalog_kinds``; list, describe and delete
are the same for every kind. Like submissions, the CLI checks little itself: the catalog names
every bad field. Credential values travel only in the create request (``secret_values``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from berth.cli.catalog_kinds import KINDS, CatalogKind, Values, secret_values
from berth.cli.common import (
    AsOpt,
    Format,
    NatsOpt,
    OutputOpt,
    as_actor,
    console,
    fail,
    say,
    with_client,
)
from berth.cli.options import command

if TYPE_CHECKING:
    from berth.cli.client import BerthClient
    from berth.contracts.catalog import AssetRef, AssetView

# --- the commands ----------------------------------------------------------------------------


def _create(entry: CatalogKind) -> Callable[[Values], None]:
    def body(v: Values) -> None:
        try:
            spec = entry.spec(v)
        except ValueError as exc:
            raise fail(str(exc), 2) from None
        _put(entry.kind, v, spec)

    return body


def _put(kind: str, v: Values, spec: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from berth.contracts.catalog import AssetPutRequest, AssetReply
    from berth.contracts.issues import issues_from
    from berth.contracts.subjects import RPC_CATALOG_ASSETS_PUT

    actor = as_actor(v.get("as_email"))
    try:
        request = AssetPutRequest(
            actor=actor,
            kind=kind,  # type: ignore[arg-type]
            name=v["name"],
            scope=v.get("scope", "tenant"),
            scopeName=v.get("scope_name", ""),
            spec=spec,
            status=v.get("status"),
            statusReason=v.get("status_reason", ""),
            update=v["update"],
        )
    except ValidationError as exc:
        issue = issues_from(exc, drop=())[0]
        raise fail(f"{issue.field}: {issue.details}", 2) from None
    out: str = v["out"]

    values = secret_values(v) if kind == "credential" else {}

    async def go(client: BerthClient) -> None:
        from berth.cli.sealing import seal_values

        put = request
        if values:
            # Values leave the CLI only sealed to the catalog's key.
            key_id, sealed = await seal_values(client, values)
            put = request.model_copy(update={"sealedValues": sealed, "keyId": key_id})
        reply: AssetReply = await client.request(RPC_CATALOG_ASSETS_PUT, put, AssetReply)
        if reply.error or reply.asset is None:
            raise fail(f"refused: {reply.error}", 1)
        if out in (Format.table, Format.wide):
            say(f"{kind} {v['name']} {'updated' if v['update'] else 'created'}", markup=False)
        else:
            _show(reply.asset, [], out)

    with_client(v.get("nats_url"), actor, go)


def _ref(kind: str, name: str, scope: str | None, scope_name: str) -> AssetRef:
    from berth.contracts.catalog import AssetRef

    return AssetRef(kind=kind, name=name, scope=scope, scopeName=scope_name)  # type: ignore[arg-type]


async def _missing(client: BerthClient, kind: str, name: str, error: str | None) -> LookupError:
    from berth.cli import suggest

    hint = suggest.closest(name, await suggest.asset_names(client, kind))
    return LookupError(f"{error or f'no {kind} {name!r}'}{hint}")


def _show(view: AssetView, used_by: list[str], out: str) -> None:
    from berth.cli import output

    data = {**view.model_dump(mode="json"), "usedBy": used_by}
    if out in (Format.json, Format.yaml):
        output.emit(data, out)
        return
    if out == Format.name:
        print(view.name)
        return
    scope = view.scope + (f" {view.scopeName}" if view.scopeName else "")
    console.print(
        output.Text.assemble((f"{view.kind} {view.name}", "bold"), f"  ({scope}, id {view.id})")
    )
    if view.status:
        reason = f": {view.statusReason}" if view.statusReason else ""
        console.print(f"status: {view.status}{reason}", markup=False)
    # The spec as YAML under the header: one format, readable and never markup.
    import yaml

    body = yaml.safe_dump(view.spec, sort_keys=False, allow_unicode=True).rstrip("\n")
    console.print(output.Text("spec:\n  " + body.replace("\n", "\n  ")))
    if used_by:
        console.print(f"used by: {', '.join(used_by)}", markup=False)


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


ScopeNameOpt = Annotated[
    str,
    typer.Option(
        "--scope-name", metavar="NAME", help="The cluster, department or project of the scope."
    ),
]
WhichScopeOpt = Annotated[
    str | None,
    typer.Option("--scope", metavar="SCOPE", help="Its scope, when the name is in several."),
]


def _read_commands(group: typer.Typer, kind: str) -> None:
    def list_(
        search: Annotated[
            str | None, typer.Option("--search", "-s", metavar="TEXT", help="Part of the name.")
        ] = None,
        project: Annotated[
            str | None,
            typer.Option("--project", "-p", metavar="PROJECT", help="Only what this project sees."),
        ] = None,
        out: OutputOpt = "table",
        nats_url: NatsOpt = None,
    ) -> None:
        async def go(client: BerthClient) -> None:
            from berth.cli import output
            from berth.contracts.catalog import AssetListReply, AssetListRequest
            from berth.contracts.subjects import RPC_CATALOG_ASSETS_LIST

            reply: AssetListReply = await client.request(
                RPC_CATALOG_ASSETS_LIST,
                AssetListRequest(kind=kind, search=search, project=project),  # type: ignore[arg-type]
                AssetListReply,
            )
            if out in (Format.json, Format.yaml):
                output.emit([a.model_dump(mode="json") for a in reply.assets], out)
                return
            if out == Format.name:
                for a in reply.assets:
                    print(a.name)
                return
            columns = ["NAME", "SCOPE", "STATUS", "DETAILS"] + (
                ["ID"] if out == Format.wide else []
            )
            grid = output.table(*columns)
            for a in reply.assets:
                scope = a.scope + (f" {a.scopeName}" if a.scopeName else "")
                status: str = a.status or ""
                if a.statusReason:
                    status += f": {a.statusReason}"
                cells = [a.name, scope, status, _summary(a)] + (
                    [a.id] if out == Format.wide else []
                )
                output.row(grid, *cells)
            output.show(console.get(), grid)

        with_client(nats_url, as_actor(None), go)

    def describe(
        name: Annotated[str, typer.Argument(metavar="NAME", help="Its name.")],
        scope: WhichScopeOpt = None,
        scope_name: ScopeNameOpt = "",
        out: OutputOpt = "table",
        nats_url: NatsOpt = None,
    ) -> None:
        async def go(client: BerthClient) -> None:
            from berth.contracts.catalog import AssetReply
            from berth.contracts.subjects import RPC_CATALOG_ASSETS_GET

            reply: AssetReply = await client.request(
                RPC_CATALOG_ASSETS_GET, _ref(kind, name, scope, scope_name), AssetReply
            )
            if reply.asset is None:
                raise await _missing(client, kind, name, reply.error)
            _show(reply.asset, reply.usedBy, out)

        with_client(nats_url, as_actor(None), go)

    def delete(
        name: Annotated[str, typer.Argument(metavar="NAME", help="Its name.")],
        scope: WhichScopeOpt = None,
        scope_name: ScopeNameOpt = "",
        out: OutputOpt = "table",
        as_email: AsOpt = None,
        nats_url: NatsOpt = None,
    ) -> None:
        actor = as_actor(as_email)

        async def go(client: BerthClient) -> None:
            from berth.cli import output
            from berth.contracts.catalog import AssetDeleteRequest, AssetReply
            from berth.contracts.subjects import RPC_CATALOG_ASSETS_DELETE

            request = AssetDeleteRequest(actor=actor, ref=_ref(kind, name, scope, scope_name))
            reply: AssetReply = await client.request(RPC_CATALOG_ASSETS_DELETE, request, AssetReply)
            if out in (Format.json, Format.yaml):
                output.emit(reply.model_dump(mode="json"), out)
            if reply.error:
                if reply.asset is None and "not" in reply.error and "found" in reply.error:
                    raise await _missing(client, kind, name, reply.error)
                raise fail(f"refused: {reply.error}", 1)
            if out in (Format.table, Format.wide):
                say(f"{kind} {name} deleted", markup=False)
            elif out == Format.name:
                print(name)

        with_client(nats_url, actor, go)

    group.command("list", help=f"List {kind}s (by part of the name; what a project sees).")(list_)
    group.command(help=f"Show a {kind} and who uses it.")(describe)
    group.command(help=f"Delete a {kind}. Refused while a workload or template uses it.")(delete)


def project_set(
    name: Annotated[
        str | None,
        typer.Argument(metavar="PROJECT", help="The project; none to show the current one."),
    ] = None,
    unset: Annotated[bool, typer.Option("--unset", metavar="", help="Forget the default.")] = False,
) -> None:
    """Choose the default project. Used when -p is not given; BERTH_PROJECT still wins."""
    from berth.cli import preferences

    if unset:
        preferences.save(project=None)
        say("no default project")
        return
    if name is None:
        current = os.environ.get("BERTH_PROJECT") or preferences.load().get("project")
        print(current or "(none)")
        return
    preferences.save(project=name)
    say(f"default project: {name}", markup=False)


def register(app: typer.Typer) -> None:
    """Add every catalog command group to the ``berth`` app."""
    for entry in KINDS:
        group = typer.Typer(rich_markup_mode=None, help=entry.help, no_args_is_help=True)
        group.command("create", help=entry.create_help)(
            command(
                entry.create_options(), _create(entry), entry.create_help, f"{entry.kind}_create"
            )
        )
        _read_commands(group, entry.kind)
        if entry.kind == "project":
            group.command("set")(project_set)
        app.add_typer(group, name=entry.kind)
