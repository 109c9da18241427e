"""Who calls: the bearer token of the HTTP request, forwarded unchanged to the services.

The gateway authenticates no one. The services verify the token that travels in the NATS
``Authorization`` header of every request the gateway sends for the caller; the gateway only
reads the token's claims (without verifying them) to fill in the envelope's actor, which the
services check against the verified token."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from berth.api.errors import ApiError
from berth.contracts.envelope import Actor
from berth.shared.identity import SigningKey

# The console keeps the pasted token in a cookie of this name, for its pages and their event
# streams; the API itself takes only the header, so no cookie acts for a caller on /api.
COOKIE = "berth_token"


@dataclass(frozen=True)
class Caller:
    authorization: str
    actor: Actor


@dataclass(frozen=True)
class DevIssuer:
    """The development issuer of ``berth up``: the console's login mints its tokens for the
    email given, as ``berth login --user`` does. Only a suite without an identity provider
    hands the gateway this key: whoever reaches the console then acts as anyone."""

    key: SigningKey
    issuer: str
    audience: str
    lifetime: float = 12 * 3600

    @classmethod
    def load(cls, path: str | Path, issuer: str, audience: str) -> DevIssuer:
        return cls(SigningKey.load(path), issuer, audience)

    def mint(self, email: str, groups: tuple[str, ...] = ()) -> str:
        return self.key.mint(
            issuer=self.issuer,
            audience=self.audience,
            subject=email,
            lifetime=self.lifetime,
            claims={"email": email, "groups": list(groups)},
        )


def console_bearer(request: Request) -> str | None:
    token = request.cookies.get(COOKIE)
    return f"Bearer {token}" if token else None


def caller_of(authorization: str | None) -> Caller:
    if not authorization:
        raise ApiError(401, "Unauthorized", "an Authorization: Bearer <token> header is required")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Unauthorized", "the Authorization header must be Bearer <token>")
    try:
        claims: dict[str, Any] = jwt.decode(
            token.strip(), options={"verify_signature": False, "verify_exp": False}
        )
    except jwt.InvalidTokenError:
        raise ApiError(401, "Unauthorized", "the bearer token is not a JWT") from None
    email = claims.get("email") or claims.get("sub")
    if not isinstance(email, str) or not email:
        raise ApiError(401, "Unauthorized", "the bearer token names no user (email or sub)")
    groups = claims.get("groups") or []
    actor = Actor(email=email, groups=tuple(str(g) for g in groups if isinstance(g, str)))
    return Caller(authorization=authorization, actor=actor)


def _caller(request: Request) -> Caller:
    return caller_of(request.headers.get("authorization"))


CallerDep = Annotated[Caller, Depends(_caller)]
