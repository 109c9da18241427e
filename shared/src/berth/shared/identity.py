"""Who is acting: the identity a bearer token proves, verified with PyJWT.

Requests from UIs (the ``ui`` role's events and queries) carry ``Authorization: Bearer <JWT>``
in their NATS headers. A token is accepted when it is signed by a key its issuer publishes
(a JWKS, from a URL or a file), names a trusted issuer and the configured audience, and has not
expired (a small leeway allows for clock skew). Two kinds of issuer are trusted: the identity
provider of people (any OpenID Connect issuer, or the development issuer ``berth up`` makes)
and berth's own issuer of application tokens (minted by the catalog from a client id and
secret). The actor is derived from the token alone; whatever the payload claims is replaced.

Verification runs on every request, so it is cached: a token already verified is recognised by
its digest until it expires, and keys are fetched once and again only for an unknown key id.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import jwt
import jwt.algorithms
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt import PyJWK, PyJWKClient, PyJWKSet

from berth.contracts.envelope import Actor

log = logging.getLogger(__name__)

AUTHORIZATION = "Authorization"
BEARER = "Bearer "
USER: Final = "user"
APPLICATION: Final = "application"
IdentityKind = Literal["user", "application"]

# Only asymmetric signatures: a shared-secret algorithm would let anyone holding the public
# keys mint tokens (the classic algorithm confusion).
ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# Prefix of the email an application acts under (an application has no email of its own).
APPLICATION_EMAIL_PREFIX = "application:"


class Unauthenticated(Exception):
    """A request whose token does not prove who sent it; the message names why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"unauthenticated: {self.reason}"


def bearer_headers(token: str | None) -> dict[str, str]:
    """The NATS headers carrying ``token`` (none without one)."""
    return {AUTHORIZATION: f"{BEARER}{token}"} if token else {}


def bearer_token(headers: Mapping[str, str] | None) -> str | None:
    """The bearer token in ``headers``, or None when there is none."""
    value = (headers or {}).get(AUTHORIZATION)
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class KeySet:
    """The public keys of one issuer: a JWKS from a URL (fetched on first use and again,
    at most every ``refresh_seconds``, when a token names a key id not seen yet) or a file
    (read again when it changes)."""

    def __init__(
        self, *, url: str | None = None, path: str | Path | None = None, refresh_seconds: float = 30
    ) -> None:
        if (url is None) == (path is None):
            raise ValueError("a key set needs either a JWKS URL or a JWKS file")
        self.url = url
        self.path = Path(path) if path is not None else None
        self._client = PyJWKClient(url, cache_jwk_set=False) if url else None
        self._keys: dict[str, PyJWK] = {}
        self._loaded_at = float("-inf")
        self._version: tuple[int, int] | None = None
        self._refresh_seconds = refresh_seconds
        self._lock = asyncio.Lock()

    @property
    def where(self) -> str:
        return self.url or str(self.path)

    async def key(self, kid: str | None) -> PyJWK | None:
        found = self._find(kid)
        if found is None and self._stale():
            async with self._lock:
                if self._find(kid) is None and self._stale():
                    await self._load()
            found = self._find(kid)
        return found

    def _find(self, kid: str | None) -> PyJWK | None:
        if kid is None:
            # A token without a key id is accepted only from an issuer with a single key.
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _stale(self) -> bool:
        if self.path is not None:
            try:
                return _version(self.path) != self._version
            except OSError:
                return True
        return time.monotonic() - self._loaded_at >= self._refresh_seconds

    async def _load(self) -> None:
        self._loaded_at = time.monotonic()
        try:
            if self._client is not None:
                # PyJWKClient fetches with urllib: in a thread, so the loop goes on meanwhile.
                jwks: PyJWKSet = await asyncio.to_thread(self._client.get_jwk_set, True)
            else:
                assert self.path is not None
                self._version = _version(self.path)
                jwks = PyJWKSet.from_json(self.path.read_text())
        except Exception as exc:
            log.warning("cannot read the keys at %s: %s", self.where, exc)
            return
        self._keys = {k.key_id or f"#{i}": k for i, k in enumerate(jwks.keys)}


def _version(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@dataclass(frozen=True)
class TrustedIssuer:
    """An issuer whose tokens are accepted, and the kind of identity they prove."""

    issuer: str
    keys: KeySet
    kind: IdentityKind = USER


@dataclass
class Verifier:
    """Verifies bearer tokens against the trusted issuers; see the module's docstring."""

    issuers: Sequence[TrustedIssuer]
    audience: str
    leeway: float = 30.0
    email_claim: str = "email"
    groups_claim: str = "groups"
    clock: Callable[[], float] = time.time
    cache_size: int = 10_000
    _cache: dict[bytes, tuple[Actor, float]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_issuer = {i.issuer: i for i in self.issuers}

    async def actor(self, headers: Mapping[str, str] | None) -> Actor:
        """The verified actor of a request with these NATS headers; ``Unauthenticated`` else."""
        return await self.verify(bearer_token(headers))

    async def verify(self, token: str | None) -> Actor:
        if not token:
            raise Unauthenticated(
                "no bearer token (the Authorization header is missing; log in with "
                "`berth login`, or send Authorization: Bearer <token>)"
            )
        now = self.clock()
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(digest)
        if cached is not None:
            actor, expires = cached
            if now <= expires + self.leeway:
                return actor
            del self._cache[digest]
        actor, expires = await self._verify(token, now)
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[digest] = (actor, expires)
        return actor

    async def _verify(self, token: str, now: float) -> tuple[Actor, float]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"malformed token ({exc})") from None
        issuer = unverified.get("iss")
        trusted = self._by_issuer.get(issuer) if isinstance(issuer, str) else None
        if trusted is None:
            known = ", ".join(repr(i) for i in self._by_issuer) or "none is configured"
            raise Unauthenticated(f"issuer {issuer!r} is not trusted (trusted: {known})")
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise Unauthenticated(f"signature algorithm {algorithm!r} is not accepted")
        kid = header.get("kid")
        key = await trusted.keys.key(kid)
        if key is None:
            raise Unauthenticated(
                f"signed with key {kid!r}, which issuer {issuer!r} does not publish "
                f"(keys from {trusted.keys.where})"
            )
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=trusted.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated(f"token expired at {_when(unverified.get('exp'))}") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(
                f"token is for audience {unverified.get('aud')!r}, not {self.audience!r}"
            ) from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated(
                f"signature does not verify against the keys of issuer {issuer!r}"
            ) from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("token is not valid yet (nbf or iat in the future)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"token has no {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token ({exc})") from None
        return self._actor(claims, trusted), float(claims["exp"])

    def _actor(self, claims: dict[str, Any], issuer: TrustedIssuer) -> Actor:
        subject = str(claims["sub"])
        groups = claims.get(self.groups_claim) or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise Unauthenticated(f"claim {self.groups_claim!r} is not a list of names")
        if issuer.kind == APPLICATION:
            return Actor(
                email=f"{APPLICATION_EMAIL_PREFIX}{subject}",
                groups=tuple(groups),
                subject=subject,
                kind=APPLICATION,
            )
        email = claims.get(self.email_claim)
        if not isinstance(email, str) or not email:
            raise Unauthenticated(f"token has no {self.email_claim!r} claim")
        return Actor(email=email, groups=tuple(groups), subject=subject, kind=USER)


def _when(exp: Any) -> str:
    try:
        return datetime.fromtimestamp(float(exp), UTC).isoformat(timespec="seconds")
    except (TypeError, ValueError, OverflowError):
        return repr(exp)


def verifier_from_settings(settings: Any) -> Verifier:
    """The verifier a service's settings describe (see ``Settings``: ``oidc_*`` and
    ``application_*``). With no issuer configured, every request from a UI is refused."""
    issuers: list[TrustedIssuer] = []
    if settings.oidc_issuer and (settings.oidc_jwks_url or settings.oidc_jwks_file):
        keys = (
            KeySet(url=settings.oidc_jwks_url)
            if settings.oidc_jwks_url
            else KeySet(path=settings.oidc_jwks_file)
        )
        issuers.append(TrustedIssuer(settings.oidc_issuer, keys))
    if settings.application_jwks_file:
        issuers.append(
            TrustedIssuer(
                settings.application_issuer,
                KeySet(path=settings.application_jwks_file),
                kind=APPLICATION,
            )
        )
    return Verifier(
        issuers,
        audience=settings.oidc_audience,
        leeway=settings.token_leeway_seconds,
        email_claim=settings.oidc_email_claim,
        groups_claim=settings.oidc_groups_claim,
    )


class SigningKey:
    """An Ed25519 key that signs tokens (the development issuer's, or the catalog's for
    applications), kept in a PEM file readable only by its owner, with its public half
    published as a JWKS file for the services to verify with."""

    ALGORITHM: Final = "EdDSA"

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        public = jwt.algorithms.OKPAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        # RFC 7638 thumbprint: a key id that changes exactly when the key does.
        canonical = json.dumps(
            {k: public[k] for k in ("crv", "kty", "x")}, separators=(",", ":"), sort_keys=True
        )
        thumbprint = hashlib.sha256(canonical.encode()).digest()
        self.kid = base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()
        self.public_jwk: dict[str, Any] = {
            **public,
            "kid": self.kid,
            "alg": self.ALGORITHM,
            "use": "sig",
        }

    @classmethod
    def load(cls, path: str | Path) -> SigningKey:
        loaded = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(loaded)

    @classmethod
    def ensure(cls, path: str | Path) -> SigningKey:
        """The key in ``path``, made (mode 0600, directory 0700) when missing; its JWKS is
        written next to it (``<name>.jwks.json``) either way."""
        path = Path(path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
        key = cls.load(path)
        jwks_file(path).write_text(json.dumps(key.jwks(), indent=2))
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    def mint(
        self,
        *,
        issuer: str,
        audience: str,
        subject: str,
        lifetime: float,
        claims: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> str:
        issued = int(now if now is not None else time.time())
        payload = {
            **(claims or {}),
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": issued,
            "nbf": issued,
            "exp": issued + int(lifetime),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self._key, algorithm=self.ALGORITHM, headers={"kid": self.kid})


def jwks_file(key_file: str | Path) -> Path:
    """Where the public keys of the signing key in ``key_file`` are published."""
    path = Path(key_file)
    return path.with_name(f"{path.stem}.jwks.json")
