"""The development issuer: a signing key ``berth up`` makes under its state directory, whose
public keys the services trust, and from which ``berth login --user EMAIL`` mints a token for
anyone it is told. Whoever can read the key can act as anyone: it is for development only;
point berth at a real identity provider (``BERTH_OIDC_ISSUER``) anywhere else."""

from __future__ import annotations

import os
from pathlib import Path

from berth.cli import endpoints

ISSUER = "urn:berth:development"
KEY_FILE = "dev-issuer.key"
# The key the catalog signs application tokens with (see berth.catalog.applications).
APPLICATIONS_KEY_FILE = "applications.key"
KEY_ENV = "BERTH_DEV_ISSUER_KEY"
DEFAULT_AUDIENCE = "berth"
DEFAULT_LIFETIME_SECONDS = 12 * 3600


def default_audience() -> str:
    return os.environ.get("BERTH_OIDC_AUDIENCE") or DEFAULT_AUDIENCE


def key_file(explicit: Path | None = None) -> Path | None:
    """The development issuer's key: the one given, ``BERTH_DEV_ISSUER_KEY``, else the one
    of the `berth up` that is running."""
    if explicit is not None:
        return explicit
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    directory = endpoints.identity_dir()
    return directory / KEY_FILE if directory is not None else None


def mint(
    key: Path,
    email: str,
    groups: list[str] | tuple[str, ...] = (),
    *,
    lifetime: float = DEFAULT_LIFETIME_SECONDS,
    issuer: str = ISSUER,
    audience: str | None = None,
    now: float | None = None,
) -> str:
    """A token of the development issuer for ``email`` (its subject too) in ``groups``."""
    from berth.shared.identity import SigningKey

    return SigningKey.load(key).mint(
        issuer=issuer,
        audience=audience or default_audience(),
        subject=email,
        lifetime=lifetime,
        claims={"email": email, "groups": list(groups)},
        now=now,
    )
