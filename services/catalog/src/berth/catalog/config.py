from pathlib import Path

from berth.shared.settings import Settings


class CatalogSettings(Settings):
    service_name: str = "catalog"
    # A fresh install gets the demo organisation and assets, so a first submission works.
    seed_demo: bool = True
    # The first administrator (System administrator at the tenant), made when missing: who ran
    # `berth up`, or BERTH_ADMIN.
    admin: str | None = None
    # Key files: storage keys (values at rest) and the sealing pair clients seal values to;
    # created, mode 0600, when missing.
    keys_dir: Path = Path(".berth/keys")
    # The key application tokens are signed with (PEM, Ed25519; `berth up` makes one). Without
    # it the catalog keeps applications but issues no tokens. The services trust its public
    # keys through BERTH_APPLICATION_JWKS_FILE.
    application_signing_key: Path | None = None
    application_token_seconds: int = 3600
    # How long an asset's delete waits for intake to say which workloads use it.
    intake_timeout_seconds: float = 5.0
