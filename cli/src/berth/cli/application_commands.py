"""``berth application create|list|delete``: applications (CI pipelines, UIs acting as a
service) and their client credentials. ``berth login --application`` exchanges them for a
token."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from berth.cli.common import NatsOpt, OutputOpt, fail, say, with_client

application_app = typer.Typer(
    help="Applications: client credentials a CI pipeline or a UI exchanges for a token.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The application's name.")]


@application_app.command("create")
def create(
    name: NameArg,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            "--secret-file",
            metavar="FILE",
            help="Write the secret to this new file (mode 0600) instead of printing it.",
        ),
    ] = None,
    nats_url: NatsOpt = None,
    out: OutputOpt = "table",
) -> None:
    """Create an application; its secret is shown this once (the catalog keeps only a hash)."""
    from berth.cli.client import BerthClient
    from berth.contracts.applications import ApplicationCreatedReply, ApplicationCreateRequest
    from berth.contracts.subjects import RPC_CATALOG_APPLICATIONS_CREATE

    if secret_file is not None and secret_file.exists():
        raise fail(f"{secret_file} exists: the secret goes only into a new file", 2)

    async def go(client: BerthClient) -> None:
        reply: ApplicationCreatedReply = await client.request(
            RPC_CATALOG_APPLICATIONS_CREATE,
            ApplicationCreateRequest(name=name, actor=client.actor),
            ApplicationCreatedReply,
        )
        if reply.error:
            raise fail(reply.error)
        if secret_file is not None:
            _write_secret(secret_file, reply.clientSecret or "")
            say(f"application {name} created; its secret is in {secret_file}", markup=False)
            return
        if out == "json":
            print(reply.model_dump_json(indent=2))
            return
        say(f"application {name} created; its secret is shown only now:", markup=False)
        print(f"client id:     {reply.clientId}")
        print(f"client secret: {reply.clientSecret}")

    with_client(nats_url, None, go)


def _write_secret(path: Path, secret: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise fail(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")


@application_app.command("list")
def list_(nats_url: NatsOpt = None, out: OutputOpt = "table") -> None:
    """The applications, who created them, and when each last got a token."""
    from berth.cli.client import BerthClient
    from berth.contracts.applications import ApplicationListReply, ApplicationListRequest
    from berth.contracts.subjects import RPC_CATALOG_APPLICATIONS_LIST

    async def go(client: BerthClient) -> None:
        reply: ApplicationListReply = await client.request(
            RPC_CATALOG_APPLICATIONS_LIST,
            ApplicationListRequest(actor=client.actor),
            ApplicationListReply,
        )
        if reply.error:
            raise fail(reply.error)
        if out == "json":
            print(reply.model_dump_json(indent=2))
            return
        if out == "name":
            for application in reply.applications:
                print(application.name)
            return
        print(f"{'NAME':<24} {'CREATED BY':<28} {'CREATED':<20} LAST LOGIN")
        for a in reply.applications:
            last = a.lastLogin.strftime("%Y-%m-%d %H:%M:%S") if a.lastLogin else "never"
            created = a.createdAt.strftime("%Y-%m-%d %H:%M:%S")
            print(f"{a.name:<24} {a.createdBy:<28} {created:<20} {last}")

    with_client(nats_url, None, go)


@application_app.command("delete")
def delete(name: NameArg, nats_url: NatsOpt = None) -> None:
    """Delete an application: it gets no new token (one it holds lasts until it expires)."""
    from berth.cli.client import BerthClient
    from berth.contracts.applications import ApplicationDeleteReply, ApplicationDeleteRequest
    from berth.contracts.subjects import RPC_CATALOG_APPLICATIONS_DELETE

    async def go(client: BerthClient) -> None:
        reply: ApplicationDeleteReply = await client.request(
            RPC_CATALOG_APPLICATIONS_DELETE,
            ApplicationDeleteRequest(name=name, actor=client.actor),
            ApplicationDeleteReply,
        )
        if reply.error:
            raise fail(reply.error)
        say(f"application {name} deleted", markup=False)

    with_client(nats_url, None, go)


def exchange(name: str, secret: str, nats_url: str | None) -> str:
    """The token the catalog issues for an application's client id and secret."""
    from berth.cli.client import BerthClient
    from berth.contracts.applications import ApplicationTokenReply, ApplicationTokenRequest
    from berth.contracts.envelope import Actor
    from berth.contracts.subjects import RPC_CATALOG_APPLICATIONS_TOKEN

    got: list[str] = []

    async def go(client: BerthClient) -> None:
        reply: ApplicationTokenReply = await client.request(
            RPC_CATALOG_APPLICATIONS_TOKEN,
            ApplicationTokenRequest(clientId=name, clientSecret=secret),
            ApplicationTokenReply,
        )
        if reply.error or not reply.accessToken:
            raise fail(f"login failed: {reply.error or 'no token'}")
        got.append(reply.accessToken)

    with_client(nats_url, Actor(email=f"application:{name}"), go)
    return got[0]
