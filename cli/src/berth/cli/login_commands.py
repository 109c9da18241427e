"""Who the CLI acts as: ``berth login``, ``logout``, ``whoami`` and ``token``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from berth.cli.common import AsOpt, NatsOpt, OutputOpt, fail, say

if TYPE_CHECKING:
    from berth.cli.tokens import Identity

ISSUER_ENV = "BERTH_OIDC_ISSUER"
CLIENT_ID_ENV = "BERTH_OIDC_CLIENT_ID"


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command()(whoami)
    app.command()(token)


def login(
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            metavar="EMAIL",
            help="Development issuer only: mint a token for this user with the key `berth up` "
            "made (whoever can read it may act as anyone).",
        ),
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option("--group", metavar="GROUP", help="With --user: the user's groups (repeat)."),
    ] = None,
    issuer_key: Annotated[
        Path | None,
        typer.Option(
            "--issuer-key",
            metavar="FILE",
            help="With --user: the development issuer's key [env BERTH_DEV_ISSUER_KEY; else the "
            "one of the running `berth up`].",
        ),
    ] = None,
    lifetime: Annotated[
        float,
        typer.Option("--lifetime", metavar="HOURS", help="With --user: how long the token lasts."),
    ] = 12.0,
    issuer: Annotated[
        str | None,
        typer.Option(
            "--issuer",
            metavar="URL",
            help="The OpenID Connect issuer to log in to with the device authorization flow "
            f"[env {ISSUER_ENV}].",
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            "--client-id", metavar="ID", help=f"The CLI's client id there [env {CLIENT_ID_ENV}]."
        ),
    ] = None,
    application: Annotated[
        str | None,
        typer.Option(
            "--application",
            metavar="NAME",
            help="Log in as an application (berth application create), with its secret from "
            "--secret-env or --secret-file.",
        ),
    ] = None,
    secret_env: Annotated[
        str | None,
        typer.Option(
            "--secret-env", metavar="VAR", help="The environment variable holding the secret."
        ),
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option("--secret-file", metavar="FILE", help="The file holding the secret."),
    ] = None,
    nats_url: NatsOpt = None,
) -> None:
    """Log in: with --user, from the development issuer of `berth up`; with --application,
    as an application (its client id and secret); else at the OpenID Connect issuer
    (BERTH_OIDC_ISSUER), approving a code in a browser. The token is kept (only
    you can read it) and sent with every request; the last login is the current identity,
    `--as EMAIL` picks another one logged in."""
    from berth.cli import dev_issuer, tokens

    if application is not None:
        identity = _application_login(application, secret_env, secret_file, nats_url)
    elif user is not None:
        key = dev_issuer.key_file(issuer_key)
        if key is None:
            raise fail(
                "no development issuer: start berth with `berth up` (or `make run`), or give "
                "--issuer-key; with a real identity provider, log in without --user",
                2,
            )
        try:
            token_ = dev_issuer.mint(key, user, group or [], lifetime=lifetime * 3600)
        except OSError as exc:
            raise fail(
                f"cannot read the development issuer's key {key}: {exc.strerror}", 2
            ) from None
        identity = tokens.Identity.of_token(token_)
    else:
        issuer = issuer or os.environ.get(ISSUER_ENV)
        if not issuer:
            raise fail(
                f"no identity provider: set {ISSUER_ENV} (or --issuer) to log in there, or "
                "give --user EMAIL to use the development issuer of `berth up`",
                2,
            )
        identity = _device_login(issuer, client_id or os.environ.get(CLIENT_ID_ENV))
    tokens.remember(identity)
    say(
        f"logged in as {identity.email}"
        + (f" ({', '.join(identity.groups)})" if identity.groups else ""),
        markup=False,
    )


def _application_login(
    name: str, secret_env: str | None, secret_file: Path | None, nats_url: str | None
) -> Identity:
    from berth.cli import application_commands, tokens

    # Never on the command line, where any user of the machine can read it.
    if secret_env:
        secret = os.environ.get(secret_env, "")
    elif secret_file:
        try:
            secret = secret_file.read_text().strip()
        except OSError as exc:
            raise fail(f"cannot read {secret_file}: {exc.strerror}", 2) from None
    else:
        raise fail("give the secret with --secret-env VAR or --secret-file FILE", 2)
    if not secret:
        raise fail("the secret is empty", 2)
    token_ = application_commands.exchange(name, secret, nats_url)
    return tokens.Identity.of_token(token_, kind="application")


def _device_login(issuer: str, client_id: str | None) -> Identity:
    from berth.cli import oidc
    from berth.cli.common import console

    def show(uri: str, code: str, complete: str | None) -> None:
        console.print(f"To log in, open {complete or uri}", markup=False)
        console.print(f"and enter the code {code}", markup=False)

    try:
        return oidc.device_login(issuer, client_id=client_id or oidc.DEFAULT_CLIENT_ID, show=show)
    except oidc.LoginFailed as exc:
        raise fail(f"login failed: {exc}") from None


def logout(
    as_email: AsOpt = None,
    everyone: Annotated[
        bool, typer.Option("--all", metavar="", help="Forget every identity logged in.")
    ] = False,
) -> None:
    """Forget the current identity's token (or --as's, or --all)."""
    from berth.cli import tokens

    gone = tokens.forget(as_email, everyone=everyone)
    if not gone:
        raise fail(f"not logged in{f' as {as_email}' if as_email else ''}")
    say(f"logged out: {', '.join(gone)}", markup=False)


def whoami(as_email: AsOpt = None, out: OutputOpt = "table") -> None:
    """Who requests are made as: subject, email, groups, issuer and when the token expires."""
    import json
    from datetime import UTC, datetime

    from berth.cli import tokens

    try:
        identity = tokens.select(as_email)
    except tokens.NotLoggedIn as exc:
        raise fail(str(exc)) from None
    if identity is None:
        raise fail("not logged in: `berth login` (or `berth login --user EMAIL` with `berth up`)")
    expires = datetime.fromtimestamp(identity.expires_at, UTC) if identity.expires_at else None
    view = {
        "subject": identity.subject,
        "email": identity.email,
        "kind": identity.kind,
        "groups": identity.groups,
        "issuer": identity.issuer,
        "expires": expires.isoformat(timespec="seconds") if expires else None,
        "expired": identity.expired,
        "source": "BERTH_TOKEN"
        if os.environ.get(tokens.TOKEN_ENV) and not as_email
        else str(tokens.cache_file()),
    }
    if out == "json":
        print(json.dumps(view, indent=2))
        return
    if out == "yaml":
        import yaml

        print(yaml.safe_dump(view, sort_keys=False), end="")
        return
    if out == "name":
        print(identity.email)
        return
    for key, value in view.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{key + ':':<9} {'' if shown is None else shown}")


def token(as_email: AsOpt = None) -> None:
    """Print the bearer token requests carry (refreshed first when it expired and can be),
    for scripts: `curl -H "Authorization: Bearer $(berth token)"`, `BERTH_TOKEN=$(berth token)`."""
    from berth.cli import tokens

    try:
        value = tokens.bearer(as_email)
    except tokens.NotLoggedIn as exc:
        raise fail(str(exc)) from None
    if value is None:
        raise fail("not logged in: `berth login` (or `berth login --user EMAIL` with `berth up`)")
    print(value)
