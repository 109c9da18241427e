"""Verification of bearer tokens: each way a token can fail is refused with its reason, a good
one gives the actor it proves, and verified tokens are cached until they expire."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from berth.contracts.envelope import Actor
from berth.shared.identity import (
    APPLICATION,
    KeySet,
    SigningKey,
    TrustedIssuer,
    Unauthenticated,
    Verifier,
    bearer_headers,
    bearer_token,
    jwks_file,
)

ISSUER = "https://idp.example.com/realms/berth"
APPS = "berth-applications"


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, SigningKey]:
    return {name: SigningKey.ensure(tmp_path / f"{name}.key") for name in ("idp", "apps", "other")}


@pytest.fixture
def verifier(tmp_path: Path, keys: dict[str, SigningKey]) -> Verifier:
    return Verifier(
        [
            TrustedIssuer(ISSUER, KeySet(path=jwks_file(tmp_path / "idp.key"))),
            TrustedIssuer(APPS, KeySet(path=jwks_file(tmp_path / "apps.key")), kind=APPLICATION),
        ],
        audience="berth",
        leeway=30,
    )


def user_token(key: SigningKey, **overrides: object) -> str:
    options: dict[str, object] = {
        "issuer": ISSUER,
        "audience": "berth",
        "subject": "0f3c-alice",
        "lifetime": 300,
        "claims": {"email": "alice@example.com", "groups": ["ml", "team-a"]},
    }
    options.update(overrides)
    return key.mint(**options)  # type: ignore[arg-type]


async def refused(verifier: Verifier, token: str | None) -> str:
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token)
    return str(caught.value)


async def test_a_good_token_gives_the_actor_it_proves(
    verifier: Verifier, keys: dict[str, SigningKey]
) -> None:
    actor = await verifier.verify(user_token(keys["idp"]))
    assert actor == Actor(
        email="alice@example.com", groups=("ml", "team-a"), subject="0f3c-alice", kind="user"
    )


async def test_an_application_token_proves_an_application(
    verifier: Verifier, keys: dict[str, SigningKey]
) -> None:
    token = keys["apps"].mint(issuer=APPS, audience="berth", subject="ci-pipeline", lifetime=60)
    actor = await verifier.verify(token)
    assert (actor.kind, actor.subject, actor.email) == (
        "application",
        "ci-pipeline",
        "application:ci-pipeline",
    )


async def test_no_token_is_refused(verifier: Verifier) -> None:
    assert "no bearer token" in await refused(verifier, None)
    assert "no bearer token" in await refused(verifier, "")


async def test_an_expired_token_is_refused_after_the_leeway(
    verifier: Verifier, keys: dict[str, SigningKey]
) -> None:
    # Within the 30 s leeway for clock skew: accepted.
    skewed = user_token(keys["idp"], lifetime=60, now=time.time() - 80)
    assert (await verifier.verify(skewed)).email == "alice@example.com"
    expired = user_token(keys["idp"], lifetime=60, now=time.time() - 3600)
    assert "token expired at" in await refused(verifier, expired)


async def test_a_token_signed_by_another_key_is_refused(
    verifier: Verifier, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    unknown_kid = user_token(keys["other"])
    assert "which issuer" in await refused(verifier, unknown_kid)
    assert "does not publish" in await refused(verifier, unknown_kid)
    # Another key claiming the issuer's key id: the signature does not verify.
    forged_header = jwt.encode(
        jwt.decode(unknown_kid, options={"verify_signature": False}),
        keys["other"]._key,
        algorithm="EdDSA",
        headers={"kid": keys["idp"].kid},
    )
    assert "signature does not verify" in await refused(verifier, forged_header)


async def test_a_token_for_another_audience_is_refused(
    verifier: Verifier, keys: dict[str, SigningKey]
) -> None:
    reason = await refused(verifier, user_token(keys["idp"], audience="grafana"))
    assert "audience 'grafana', not 'berth'" in reason


async def test_a_token_of_another_issuer_is_refused(
    verifier: Verifier, keys: dict[str, SigningKey]
) -> None:
    reason = await refused(verifier, user_token(keys["idp"], issuer="https://evil.example.com"))
    assert "issuer 'https://evil.example.com' is not trusted" in reason


async def test_an_issuer_cannot_mint_for_the_other_kind(
    verifier: Verifier, keys: dict[str, SigningKey]
) -> None:
    # The application key signing a token that names the people's issuer.
    assert "does not publish" in await refused(verifier, user_token(keys["apps"]))


async def test_shared_secret_and_unsigned_tokens_are_refused(
    verifier: Verifier, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    claims = jwt.decode(user_token(keys["idp"]), options={"verify_signature": False})
    # HS256 keyed with the published public key: the classic algorithm confusion.
    public = keys["idp"].public_jwk["x"]
    confused = jwt.encode(claims, public, algorithm="HS256", headers={"kid": keys["idp"].kid})
    assert "algorithm 'HS256' is not accepted" in await refused(verifier, confused)
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert "not accepted" in await refused(verifier, unsigned)
    assert "malformed token" in await refused(verifier, "not.a.token")


async def test_a_user_token_needs_an_email(verifier: Verifier, keys: dict[str, SigningKey]) -> None:
    assert "no 'email' claim" in await refused(verifier, user_token(keys["idp"], claims={}))


async def test_rsa_keys_from_a_jwks_work_as_an_identity_provider_publishes_them(
    tmp_path: Path,
) -> None:
    private = generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "rsa1"}]}))
    verifier = Verifier([TrustedIssuer(ISSUER, KeySet(path=tmp_path / "jwks.json"))], "berth")
    token = jwt.encode(
        {"iss": ISSUER, "aud": ["berth", "account"], "sub": "u1", "email": "u@example.com",
         "exp": int(time.time()) + 60},
        private,
        algorithm="RS256",
        headers={"kid": "rsa1"},
    )  # fmt: skip
    assert (await verifier.verify(token)).email == "u@example.com"


async def test_verified_tokens_are_cached_until_they_expire(
    verifier: Verifier, keys: dict[str, SigningKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = user_token(keys["idp"], lifetime=60)
    await verifier.verify(token)
    calls: list[str] = []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append("decode"))
    assert (await verifier.verify(token)).email == "alice@example.com"
    assert calls == []
    # Past its expiry (and the leeway), the cached entry is dropped and the token checked again.
    verifier.clock = lambda: time.time() + 3600
    with pytest.raises(Exception):  # noqa: B017  (jwt.decode is stubbed out)
        await verifier.verify(token)
    assert calls


async def test_a_key_added_to_the_jwks_file_is_picked_up(
    verifier: Verifier, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    await verifier.verify(user_token(keys["idp"]))
    rotated = SigningKey.ensure(tmp_path / "rotated.key")
    published = jwks_file(tmp_path / "idp.key")
    both = {"keys": [keys["idp"].public_jwk, rotated.public_jwk]}
    published.write_text(json.dumps(both))
    assert (await verifier.verify(user_token(rotated))).email == "alice@example.com"


def test_the_header_carries_the_token() -> None:
    assert bearer_token(bearer_headers("abc")) == "abc"
    assert bearer_token({"Authorization": "bearer xyz"}) == "xyz"
    assert bearer_token({"Authorization": "Basic xyz"}) is None
    assert bearer_token(None) is None
    assert bearer_headers(None) == {}


def test_keys_are_private_files(tmp_path: Path) -> None:
    SigningKey.ensure(tmp_path / "k" / "dev.key")
    assert (tmp_path / "k" / "dev.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o700
    # Kept across restarts: the same key, the same key id.
    assert (
        SigningKey.ensure(tmp_path / "k" / "dev.key").kid
        == SigningKey.load(tmp_path / "k" / "dev.key").kid
    )
