"""``berth login`` against an OpenID Connect issuer: the OAuth 2.0 device authorization grant
(RFC 8628), and refresh tokens when a token expires.

The issuer's endpoints come from its discovery document; token requests go through authlib's
OAuth 2.0 client. The CLI asks for a device code, shows where to enter the user code, and
polls the token endpoint at the interval the issuer sets (slower after ``slow_down``, on
after ``authorization_pending``) until the user approves, denies, or the code expires.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from berth.cli.tokens import Identity

DEFAULT_CLIENT_ID = "berth-cli"
DEFAULT_SCOPE = "openid email profile offline_access"
TIMEOUT_SECONDS = 10


class LoginFailed(Exception):
    """The issuer refused or the user did not approve; the message says which."""


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    device_authorization: str
    token: str

    @classmethod
    def discover(cls, issuer: str) -> Endpoints:
        import requests

        url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
        try:
            response = requests.get(url, timeout=TIMEOUT_SECONDS)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise LoginFailed(f"cannot read the discovery document {url}: {exc}") from None
        if document.get("issuer") != issuer:
            raise LoginFailed(f"{url} names issuer {document.get('issuer')!r}, not {issuer!r}")
        device = document.get("device_authorization_endpoint")
        if not device:
            raise LoginFailed(f"issuer {issuer} offers no device authorization endpoint")
        return cls(issuer, device, document["token_endpoint"])


def _session(client_id: str) -> Any:
    from authlib.integrations.requests_client import OAuth2Session

    # A public client (a CLI keeps no secret): the client id goes in the request body.
    return OAuth2Session(client_id, token_endpoint_auth_method="none")


def device_login(
    issuer: str,
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    scope: str = DEFAULT_SCOPE,
    show: Callable[[str, str, str | None], None],
    sleep: Callable[[float], None] = time.sleep,
) -> Identity:
    """Log in with the device authorization grant; ``show(verification_uri, user_code,
    verification_uri_complete)`` tells the user where to approve."""
    from authlib.integrations.base_client import OAuthError
    from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE

    endpoints = Endpoints.discover(issuer)
    session = _session(client_id)
    try:
        response = session.post(
            endpoints.device_authorization,
            data={"client_id": client_id, "scope": scope},
            timeout=TIMEOUT_SECONDS,
            # No token yet: this request is how one is obtained.
            withhold_token=True,
        )
        grant = response.json()
    except Exception as exc:
        raise LoginFailed(f"device authorization request failed: {exc}") from None
    if "error" in grant or "device_code" not in grant:
        raise LoginFailed(
            f"device authorization refused: {grant.get('error_description') or grant}"
        )
    show(grant["verification_uri"], grant["user_code"], grant.get("verification_uri_complete"))
    interval = float(grant.get("interval", 5))
    deadline = time.monotonic() + float(grant.get("expires_in", 600))
    while time.monotonic() < deadline:
        sleep(interval)
        try:
            token = session.fetch_token(
                endpoints.token,
                grant_type=DEVICE_CODE_GRANT_TYPE,
                device_code=grant["device_code"],
                client_id=client_id,
                timeout=TIMEOUT_SECONDS,
            )
        except OAuthError as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                # RFC 8628 §3.5: every later poll waits 5 seconds longer.
                interval += 5
                continue
            if exc.error == "access_denied":
                raise LoginFailed("the login was denied at the issuer") from None
            if exc.error == "expired_token":
                break
            raise LoginFailed(f"{exc.error}: {exc.description or ''}".strip()) from None
        return _identity(token, endpoints.token, client_id)
    raise LoginFailed("the device code expired before the login was approved; try again")


def refresh(identity: Identity) -> Identity | None:
    """``identity`` with a new token from its refresh token; None when the issuer refuses
    (the refresh token expired or was revoked: log in again)."""
    from authlib.integrations.base_client import OAuthError

    assert identity.token_endpoint and identity.refresh_token
    session = _session(identity.client_id or DEFAULT_CLIENT_ID)
    try:
        token = session.refresh_token(
            identity.token_endpoint,
            refresh_token=identity.refresh_token,
            client_id=identity.client_id or DEFAULT_CLIENT_ID,
            timeout=TIMEOUT_SECONDS,
        )
    except (OAuthError, OSError):
        return None
    renewed = _identity(token, identity.token_endpoint, identity.client_id or DEFAULT_CLIENT_ID)
    if renewed.refresh_token is None:
        # Issuers may keep the refresh token as it was (RFC 6749 §6).
        renewed.refresh_token = identity.refresh_token
    return renewed


def _identity(token: dict[str, Any], token_endpoint: str, client_id: str) -> Identity:
    access = token.get("access_token")
    if not access:
        raise LoginFailed("the issuer answered without an access token")
    return Identity.of_token(
        str(access),
        refresh_token=token.get("refresh_token"),
        token_endpoint=token_endpoint,
        client_id=client_id,
    )
