"""The identities the CLI has logged in as, and the bearer token each request carries.

``berth login`` stores each identity's token (and, from an OpenID Connect issuer, its refresh
token) in ``tokens.json`` under the user's berth directory (``BERTH_HOME``, else
``~/.berth``), readable only by its owner; the last one logged in is the current one, and
``--as EMAIL`` picks another one logged in. ``BERTH_TOKEN`` (a token a script got with
``berth token`` or from elsewhere) wins over the file.

What a token says is read here without verifying it, only to show it and to choose: the
services verify every token they are sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from berth.cli import endpoints

TOKEN_ENV = "BERTH_TOKEN"
# A token this close to its expiry is refreshed (or reported expired) before it is sent.
EXPIRY_MARGIN_SECONDS = 30


class NotLoggedIn(LookupError):
    """No identity to act as; the message says how to get one."""


@dataclass
class Identity:
    email: str
    access_token: str
    issuer: str
    subject: str
    groups: list[str] = field(default_factory=list)
    expires_at: float = 0.0
    kind: str = "user"
    # Set when the issuer gave a refresh token (OpenID Connect login).
    refresh_token: str | None = None
    token_endpoint: str | None = None
    client_id: str | None = None

    @classmethod
    def of_token(cls, token: str, **extra: Any) -> Identity:
        claims = unverified_claims(token)
        kind = extra.pop("kind", "user")
        subject = str(claims.get("sub", ""))
        email = claims.get("email") or (f"application:{subject}" if kind == "application" else "")
        return cls(
            email=str(email or subject),
            access_token=token,
            issuer=str(claims.get("iss", "")),
            subject=subject,
            groups=[str(g) for g in claims.get("groups") or []],
            expires_at=float(claims.get("exp") or 0),
            kind=kind,
            **extra,
        )

    @property
    def expired(self) -> bool:
        return bool(self.expires_at) and time.time() > self.expires_at - EXPIRY_MARGIN_SECONDS


def unverified_claims(token: str) -> dict[str, Any]:
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise NotLoggedIn(f"not a token: {exc}") from None
    return dict(claims)


def cache_file() -> Path:
    return endpoints.state_file().with_name("tokens.json")


def _load() -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        state = json.loads(cache_file().read_text())
        if isinstance(state, dict):
            return state
    return {"current": None, "identities": {}}


def _save(state: dict[str, Any]) -> None:
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    # Created 0600: the file holds bearer tokens.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(state, out, indent=2)
    temporary.replace(path)


def remember(identity: Identity, *, current: bool = True) -> None:
    """Keep ``identity`` (and make it the current one, unless told not to)."""
    state = _load()
    state.setdefault("identities", {})[identity.email] = asdict(identity)
    if current or not state.get("current"):
        state["current"] = identity.email
    _save(state)


def forget(email: str | None = None, *, everyone: bool = False) -> list[str]:
    """Log out ``email`` (the current identity when None, every one with ``everyone``);
    return who was logged out."""
    state = _load()
    identities: dict[str, Any] = state.get("identities", {})
    gone = list(identities) if everyone else [email or state.get("current") or ""]
    gone = [g for g in gone if g in identities]
    for email_ in gone:
        del identities[email_]
    if state.get("current") in gone:
        state["current"] = next(iter(identities), None)
    _save(state)
    return gone


def logged_in() -> list[Identity]:
    return [Identity(**i) for i in _load().get("identities", {}).values()]


def current_email() -> str | None:
    current = _load().get("current")
    return str(current) if current else None


def select(as_email: str | None = None) -> Identity | None:
    """The identity to act as: ``as_email`` among those logged in, else ``BERTH_TOKEN``'s,
    else the current one; None when there is none."""
    identities = _load().get("identities", {})
    if as_email:
        if as_email not in identities:
            if (token := os.environ.get(TOKEN_ENV)) and Identity.of_token(token).email == as_email:
                return Identity.of_token(token)
            known = ", ".join(sorted(identities)) or "nobody"
            raise NotLoggedIn(
                f"not logged in as {as_email} (logged in: {known}); "
                f"`berth login --user {as_email}` first"
            )
        return Identity(**identities[as_email])
    if token := os.environ.get(TOKEN_ENV):
        return Identity.of_token(token)
    current = _load().get("current")
    return Identity(**identities[current]) if current in identities else None


def fresh(identity: Identity) -> Identity:
    """``identity`` with a token that has not expired: refreshed with its refresh token when it
    has one (and stored again), else as it is (the services then say it expired)."""
    if not identity.expired or not (identity.refresh_token and identity.token_endpoint):
        return identity
    from berth.cli import oidc

    renewed = oidc.refresh(identity)
    if renewed is None:
        return identity
    if identity.email in _load().get("identities", {}):
        remember(renewed, current=False)
    return renewed


def bearer(as_email: str | None = None) -> str | None:
    """The token a request made as ``as_email`` (else the current identity) carries."""
    identity = select(as_email)
    return fresh(identity).access_token if identity else None
