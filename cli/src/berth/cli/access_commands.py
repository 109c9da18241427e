"""``berth role list`` (the permission matrix) and ``berth access-rule create|list|delete``
(who is which role where; the catalog owns the rules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from berth.cli.common import Format, NatsOpt, OutputOpt, console, fail, say, with_client

if TYPE_CHECKING:
    from berth.cli.client import BerthClient

SUBJECT_TYPES = ("user", "group", "application")
SCOPES = ("tenant", "cluster", "department", "project")


def register(app: typer.Typer) -> None:
    role_app = typer.Typer(
        rich_markup_mode=None, help="The built-in roles and what each may do.", no_args_is_help=True
    )
    role_app.command("list")(role_list)
    app.add_typer(role_app, name="role")
    rule_app = typer.Typer(
        rich_markup_mode=None,
        help="Access rules: a subject (user, group or application) is a role in a scope.",
        no_args_is_help=True,
    )
    rule_app.command("create")(create)
    rule_app.command("list")(list_)
    rule_app.command("delete")(delete)
    app.add_typer(rule_app, name="access-rule")


def role_list(out: OutputOpt = "table") -> None:
    """Print the permission matrix: each role's actions on each resource."""
    from berth.cli import output
    from berth.contracts.access import MATRIX, ROLES, matrix_text

    if out in (Format.json, Format.yaml):
        output.emit(
            [
                {
                    "id": r.id,
                    "name": r.name,
                    "description": r.description,
                    "permissions": {
                        resource: sorted(row[r.name]) for resource, row in MATRIX.items()
                    },
                }
                for r in ROLES
            ],
            out,
        )
    elif out == Format.name:
        for r in ROLES:
            print(r.name)
    else:
        print(matrix_text())


SubjectTypeOpt = Annotated[
    str,
    typer.Option(
        "--subject-type", metavar="TYPE", help="user, group or application.", show_default=True
    ),
]
ScopeOpt = Annotated[
    str,
    typer.Option(
        "--scope",
        metavar="SCOPE",
        help="tenant, cluster, department or project.",
        show_default=True,
    ),
]
ScopeNameOpt = Annotated[
    str,
    typer.Option("--scope-name", metavar="NAME", help="The cluster, department or project."),
]


def _subject_type(value: str) -> str:
    if value not in SUBJECT_TYPES:
        raise fail(f"--subject-type: {value!r} is not one of {', '.join(SUBJECT_TYPES)}", 2)
    return "app" if value == "application" else value


def _scope(value: str) -> str:
    if value not in SCOPES:
        raise fail(f"--scope: {value!r} is not one of {', '.join(SCOPES)}", 2)
    return value


def create(
    subject: Annotated[
        str, typer.Option("--subject", metavar="SUBJECT", help="Email, group or application.")
    ],
    role: Annotated[
        str, typer.Option("--role", metavar="ROLE", help='Role name or id ("L1 researcher").')
    ],
    subject_type: SubjectTypeOpt = "user",
    scope: ScopeOpt = "tenant",
    scope_name: ScopeNameOpt = "",
    out: OutputOpt = "table",
    nats_url: NatsOpt = None,
) -> None:
    """Grant a role in a scope (and everything below it)."""
    from berth.contracts.access import AccessRuleCreateRequest, role_named

    known = role_named(role)
    if known is None:
        raise fail(f'no role "{role}" (see berth role list)', 2)
    kind, scope_type = _subject_type(subject_type), _scope(scope)

    async def go(client: BerthClient) -> None:
        from berth.contracts.access import AccessRuleReply
        from berth.contracts.subjects import RPC_ACCESS_RULES_CREATE

        request = AccessRuleCreateRequest(
            actor=client.actor,
            subjectId=subject,
            subjectType=kind,  # type: ignore[arg-type]
            roleId=known.id,
            roleName=known.name,
            scopeType=scope_type,  # type: ignore[arg-type]
            scopeId=scope_name,
        )
        reply: AccessRuleReply = await client.request(
            RPC_ACCESS_RULES_CREATE, request, AccessRuleReply
        )
        if reply.accessRule is None:
            raise fail(reply.error or "refused", 1)
        _show([reply.accessRule], out, created=True)

    with_client(nats_url, None, go)


def list_(
    subject: Annotated[
        list[str] | None, typer.Option("--subject", metavar="SUBJECT", help="Only these.")
    ] = None,
    scope: Annotated[str | None, typer.Option("--scope", metavar="SCOPE")] = None,
    scope_name: Annotated[str | None, typer.Option("--scope-name", metavar="NAME")] = None,
    out: OutputOpt = "table",
    nats_url: NatsOpt = None,
) -> None:
    """List the access rules you may see (and your own)."""
    from berth.contracts.access import AccessRuleListRequest

    async def go(client: BerthClient) -> None:
        from berth.contracts.access import AccessRuleListReply
        from berth.contracts.subjects import RPC_ACCESS_RULES_LIST

        request = AccessRuleListRequest(
            actor=client.actor,
            subjectIds=subject or None,
            scopeType=_scope(scope) if scope else None,  # type: ignore[arg-type]
            scopeId=scope_name,
        )
        reply: AccessRuleListReply = await client.request(
            RPC_ACCESS_RULES_LIST, request, AccessRuleListReply
        )
        if reply.error:
            raise fail(reply.error, 1)
        _show(reply.accessRules, out)

    with_client(nats_url, None, go)


def delete(
    rule_id: Annotated[str, typer.Argument(metavar="ID", help="The rule's id (access-rule list).")],
    nats_url: NatsOpt = None,
) -> None:
    """Delete an access rule (rules are never edited: delete one, create another)."""
    from berth.contracts.access import AccessRuleDeleteRequest

    async def go(client: BerthClient) -> None:
        from berth.contracts.access import AccessRuleReply
        from berth.contracts.subjects import RPC_ACCESS_RULES_DELETE

        reply: AccessRuleReply = await client.request(
            RPC_ACCESS_RULES_DELETE,
            AccessRuleDeleteRequest(actor=client.actor, id=rule_id),
            AccessRuleReply,
        )
        if reply.accessRule is None:
            raise fail(reply.error or "refused", 1)
        rule = reply.accessRule
        say(f"deleted {rule.id}: {rule.subjectId} {rule.roleName} in {_where(rule)}", markup=False)

    with_client(nats_url, None, go)


def _where(rule: object) -> str:
    from berth.contracts.access import AccessRule

    assert isinstance(rule, AccessRule)
    return "the tenant" if rule.scopeType == "tenant" else f"{rule.scopeType} {rule.scopeName}"


def _show(rules: Sequence[object], out: str, *, created: bool = False) -> None:
    from berth.cli import output
    from berth.contracts.access import AccessRule

    typed = [r for r in rules if isinstance(r, AccessRule)]
    if out in (Format.json, Format.yaml):
        found = [r.model_dump(mode="json") for r in typed]
        output.emit(found[0] if created else found, out)
        return
    if out == Format.name:
        for r in typed:
            print(r.id)
        return
    grid = output.table("ID", "SUBJECT", "TYPE", "ROLE", "SCOPE", "GRANTED BY")
    for r in typed:
        kind = "application" if r.subjectType == "app" else r.subjectType
        output.row(grid, r.id, r.subjectId, kind, r.roleName, _where(r), r.createdBy)
    output.show(console.get(), grid)
