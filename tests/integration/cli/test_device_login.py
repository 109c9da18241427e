"""``berth login`` against an OpenID Connect issuer: a small real HTTP issuer on loopback
(discovery, device authorization, token and JWKS endpoints, signing with a key of its own)
drives the device authorization flow, the refresh of an expired token, and the services'
verification of what it issued through its JWKS URL."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from berth.cli import oidc, tokens
from berth.cli.main import app
from berth.shared.identity import KeySet, SigningKey, TrustedIssuer, Verifier

CLIENT_ID = "berth-cli"


@dataclass
class Issuer:
    """The issuer's state: what the token endpoint answers to each poll, and what it saw."""

    key: SigningKey
    url: str = ""
    # Answers to successive device-code polls before the tokens: error codes.
    pending: list[str] = field(default_factory=list)
    polls: list[dict[str, str]] = field(default_factory=list)
    refreshes: list[dict[str, str]] = field(default_factory=list)
    lifetime: int = 300
    issued: int = 0

    def tokens(self, email: str) -> dict[str, Any]:
        self.issued += 1
        access = self.key.mint(
            issuer=self.url,
            audience="berth",
            subject=f"id-{email.split('@')[0]}",
            lifetime=self.lifetime,
            claims={"email": email, "groups": ["researchers"]},
        )
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "refresh_token": f"refresh-{self.issued}",
        }


def handler_for(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def answer(self, body: dict[str, Any], status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                self.answer(
                    {
                        "issuer": issuer.url,
                        "device_authorization_endpoint": f"{issuer.url}/device",
                        "token_endpoint": f"{issuer.url}/token",
                        "jwks_uri": f"{issuer.url}/jwks",
                    }
                )
            elif self.path == "/jwks":
                self.answer(issuer.key.jwks())
            else:
                self.answer({"error": "not_found"}, 404)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            if self.path == "/device":
                assert form["client_id"] == CLIENT_ID
                self.answer(
                    {
                        "device_code": "dev-123",
                        "user_code": "WDJB-MJHT",
                        "verification_uri": f"{issuer.url}/activate",
                        "verification_uri_complete": f"{issuer.url}/activate?code=WDJB-MJHT",
                        "expires_in": 600,
                        "interval": 1,
                    }
                )
            elif self.path == "/token":
                grant = form.get("grant_type")
                if grant == "urn:ietf:params:oauth:grant-type:device_code":
                    issuer.polls.append(form)
                    if form.get("device_code") != "dev-123":
                        self.answer({"error": "invalid_grant"}, 400)
                    elif issuer.pending:
                        self.answer({"error": issuer.pending.pop(0)}, 400)
                    else:
                        self.answer(issuer.tokens("alice@example.com"))
                elif grant == "refresh_token":
                    issuer.refreshes.append(form)
                    if form.get("refresh_token", "").startswith("refresh-"):
                        self.answer(issuer.tokens("alice@example.com"))
                    else:
                        self.answer({"error": "invalid_grant"}, 400)
                else:
                    self.answer({"error": "unsupported_grant_type"}, 400)

    return Handler


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[Issuer]:
    state = Issuer(SigningKey.ensure(tmp_path / "idp.key"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/realms/berth"
    # The issuer's paths sit under /realms/berth as Keycloak's do; the handler sees the rest.
    server.RequestHandlerClass = _strip_prefix(server.RequestHandlerClass, "/realms/berth")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _strip_prefix(handler: Any, prefix: str) -> Any:
    class Stripped(handler):  # type: ignore[misc,valid-type]
        def parse_request(self) -> bool:
            ok: bool = super().parse_request()
            self.path = self.path.removeprefix(prefix) or "/"
            return ok

    return Stripped


def test_device_flow_waits_for_approval_and_slows_down_when_told(issuer: Issuer) -> None:
    issuer.pending = ["authorization_pending", "slow_down", "authorization_pending"]
    shown: list[tuple[str, str, str | None]] = []
    waits: list[float] = []
    identity = oidc.device_login(issuer.url, show=lambda *a: shown.append(a), sleep=waits.append)
    assert shown == [
        (f"{issuer.url}/activate", "WDJB-MJHT", f"{issuer.url}/activate?code=WDJB-MJHT")
    ]
    # The issuer's interval, then 5 s more for every poll after slow_down (RFC 8628 §3.5).
    assert waits == [1, 1, 6, 6]
    assert [p["client_id"] for p in issuer.polls] == [CLIENT_ID] * 4
    assert identity.email == "alice@example.com"
    assert identity.subject == "id-alice"
    assert identity.groups == ["researchers"]
    assert identity.refresh_token == "refresh-1"
    assert identity.token_endpoint == f"{issuer.url}/token"


def test_a_denied_login_says_so(issuer: Issuer) -> None:
    issuer.pending = ["authorization_pending", "access_denied"]
    with pytest.raises(oidc.LoginFailed, match="denied"):
        oidc.device_login(issuer.url, show=lambda *a: None, sleep=lambda _s: None)


def test_a_wrong_issuer_in_discovery_is_refused(issuer: Issuer) -> None:
    with pytest.raises(oidc.LoginFailed, match="names issuer"):
        oidc.Endpoints.discover(issuer.url.replace("127.0.0.1", "localhost"))


async def test_the_services_verify_what_the_issuer_signed_through_its_jwks_url(
    issuer: Issuer,
) -> None:
    identity = oidc.device_login(issuer.url, show=lambda *a: None, sleep=lambda _s: None)
    verifier = Verifier([TrustedIssuer(issuer.url, KeySet(url=f"{issuer.url}/jwks"))], "berth")
    actor = await verifier.verify(identity.access_token)
    assert (actor.email, actor.subject, actor.groups) == (
        "alice@example.com",
        "id-alice",
        ("researchers",),
    )


def test_berth_login_runs_the_flow_and_refreshes_an_expired_token(
    issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BERTH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BERTH_OIDC_ISSUER", issuer.url)
    monkeypatch.delenv(tokens.TOKEN_ENV, raising=False)
    # The CLI waits the issuer's interval between polls: one second here.
    result = CliRunner().invoke(app, ["login"])
    assert result.exit_code == 0, result.output
    assert f"open {issuer.url}/activate?code=WDJB-MJHT" in result.output
    assert "logged in as alice@example.com (researchers)" in result.output

    # The token expires: the next request's token is a refreshed one, stored again.
    issuer.lifetime = 300
    stored = tokens.select()
    assert stored is not None and stored.refresh_token == "refresh-1"
    stored.expires_at = time.time() - 1
    tokens.remember(stored)
    refreshed = CliRunner().invoke(app, ["token"]).output.strip()
    assert refreshed != stored.access_token
    assert issuer.refreshes[-1]["refresh_token"] == "refresh-1"
    again = tokens.select()
    assert again is not None and again.refresh_token == "refresh-2"
    assert again.access_token == refreshed and not again.expired
