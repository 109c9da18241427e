"""``berth login --user`` (the development issuer), ``whoami``, ``token``, ``--as`` and
``logout``, with the token cache in a directory of the test's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from berth.cli import dev_issuer, tokens
from berth.cli.main import app
from berth.shared.identity import KeySet, SigningKey, TrustedIssuer, Verifier, jwks_file

runner = CliRunner()


@pytest.fixture
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    key = tmp_path / "identity" / dev_issuer.KEY_FILE
    SigningKey.ensure(key)
    monkeypatch.setenv("BERTH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(dev_issuer.KEY_ENV, str(key))
    monkeypatch.delenv(tokens.TOKEN_ENV, raising=False)
    return key


def berth(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


async def test_login_mints_a_token_the_services_accept(key: Path) -> None:
    code, out = berth("login", "--user", "alice@example.com", "--group", "team-a")
    assert code == 0, out
    assert "logged in as alice@example.com (team-a)" in out
    code, token = berth("token")
    assert code == 0
    verifier = Verifier(
        [TrustedIssuer(dev_issuer.ISSUER, KeySet(path=jwks_file(key)))], audience="berth"
    )
    actor = await verifier.verify(token.strip())
    assert (actor.email, actor.groups, actor.kind) == ("alice@example.com", ("team-a",), "user")


def test_whoami_tells_subject_email_groups_issuer_and_expiry(key: Path) -> None:
    berth("login", "--user", "alice@example.com", "--group", "team-a", "--lifetime", "1")
    code, out = berth("whoami", "-o", "json")
    assert code == 0, out
    view = json.loads(out)
    assert view["subject"] == view["email"] == "alice@example.com"
    assert view["groups"] == ["team-a"]
    assert view["issuer"] == dev_issuer.ISSUER
    assert view["expires"] and view["expired"] is False
    code, out = berth("whoami")
    assert "issuer:   urn:berth:development" in out


def test_the_cache_is_private_and_keeps_each_identity(key: Path) -> None:
    berth("login", "--user", "alice@example.com")
    berth("login", "--user", "bob@example.com")
    assert tokens.cache_file().stat().st_mode & 0o777 == 0o600
    # The last login is current; --as picks another one logged in.
    assert berth("whoami", "-o", "name")[1].strip() == "bob@example.com"
    assert berth("whoami", "--as", "alice@example.com", "-o", "name")[1].strip() == (
        "alice@example.com"
    )
    code, out = berth("whoami", "--as", "carol@example.com")
    assert code != 0
    assert "not logged in as carol@example.com" in out
    assert "berth login --user carol@example.com" in out


def test_logout_forgets_the_identity(key: Path) -> None:
    berth("login", "--user", "alice@example.com")
    berth("login", "--user", "bob@example.com")
    code, out = berth("logout")
    assert code == 0 and "logged out: bob@example.com" in out
    # The other identity logged in becomes current.
    assert berth("whoami", "-o", "name")[1].strip() == "alice@example.com"
    assert berth("logout", "--all")[0] == 0
    code, out = berth("token")
    assert code != 0 and "not logged in" in out


def test_berth_token_in_the_environment_wins(key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    berth("login", "--user", "alice@example.com")
    given = dev_issuer.mint(key, "ci@example.com")
    monkeypatch.setenv(tokens.TOKEN_ENV, given)
    assert berth("whoami", "-o", "name")[1].strip() == "ci@example.com"
    assert berth("token")[1].strip() == given
    # An identity logged in is still there to pick.
    assert berth("whoami", "--as", "alice@example.com", "-o", "name")[1].strip() == (
        "alice@example.com"
    )


def test_without_the_key_nobody_can_mint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(dev_issuer.KEY_ENV, raising=False)
    code, out = berth("login", "--user", "alice@example.com")
    assert code == 2 and "no development issuer" in out
    code, out = berth(
        "login", "--user", "alice@example.com", "--issuer-key", str(tmp_path / "none.key")
    )
    assert code == 2 and "cannot read the development issuer's key" in out


def test_login_without_user_needs_an_identity_provider(
    key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BERTH_OIDC_ISSUER", raising=False)
    code, out = berth("login")
    assert code == 2 and "BERTH_OIDC_ISSUER" in out


async def test_berth_up_makes_a_development_issuer_the_services_trust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from berth.cli.suite import Suite
    from berth.shared.identity import verifier_from_settings
    from berth.shared.settings import Settings

    for name in ("BERTH_OIDC_ISSUER", "BERTH_OIDC_JWKS_URL", "BERTH_OIDC_JWKS_FILE"):
        monkeypatch.delenv(name, raising=False)
    suite = Suite(tmp_path / "state", nats_url="nats://x:4222", database_url="postgresql://x/y")
    suite.ensure_identity()
    key = tmp_path / "state" / "identity" / dev_issuer.KEY_FILE
    assert key.stat().st_mode & 0o777 == 0o600
    intake, catalog = suite.env("intake"), suite.env("catalog")
    assert intake["BERTH_OIDC_ISSUER"] == dev_issuer.ISSUER
    # Only the catalog gets a signing key; no service but the api (its console's login)
    # gets the development issuer's.
    assert "BERTH_APPLICATION_SIGNING_KEY" not in intake
    assert dev_issuer.KEY_ENV not in intake and dev_issuer.KEY_ENV not in catalog
    assert suite.env("api")[dev_issuer.KEY_ENV] == str(key)
    assert catalog["BERTH_APPLICATION_SIGNING_KEY"].endswith(dev_issuer.APPLICATIONS_KEY_FILE)
    for name, value in intake.items():
        if name.startswith("BERTH_OIDC") or name.startswith("BERTH_APPLICATION"):
            monkeypatch.setenv(name, value)
    actor = await verifier_from_settings(Settings()).verify(suite.token("dev@example.com"))
    assert actor.email == "dev@example.com"


def test_with_an_identity_provider_berth_up_makes_no_development_issuer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from berth.cli.suite import Suite

    monkeypatch.setenv("BERTH_OIDC_ISSUER", "https://idp.example.com/realms/berth")
    monkeypatch.setenv("BERTH_OIDC_JWKS_URL", "https://idp.example.com/certs")
    suite = Suite(tmp_path / "state", nats_url="nats://x:4222", database_url="postgresql://x/y")
    suite.ensure_identity()
    assert not (tmp_path / "state" / "identity" / dev_issuer.KEY_FILE).exists()
    env = suite.env("policy")
    assert dev_issuer.KEY_ENV not in suite.env("api")
    assert env["BERTH_OIDC_ISSUER"] == "https://idp.example.com/realms/berth"
    assert env["BERTH_OIDC_JWKS_URL"] == "https://idp.example.com/certs"
