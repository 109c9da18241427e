"""Typed settings shared by every berth process, read from ``BERTH_*`` environment variables."""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime settings common to every service; services subclass it for their own fields."""

    model_config = SettingsConfigDict(env_prefix="BERTH_", extra="ignore")

    service_name: str = "berth"
    nats_url: str = "nats://127.0.0.1:4222"
    # File holding this process's NATS nkey seed (its role's credential); unset connects
    # anonymously, which only a development server without authentication accepts.
    nats_credentials: str | None = None
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/berth"
    # False where a separate job migrates the schemas (the Helm chart's), so that replicas do
    # not each run the migrations: the service then waits until its schema is at the revision
    # its code expects.
    migrate_on_start: bool = True
    # Port of the HTTP health endpoints (/livez, /readyz) for a container orchestrator's
    # probes; unset serves none.
    health_port: int | None = Field(default=None, ge=1, le=65535)
    cluster_id: str = Field(default="local", description="Cluster this process serves by default.")

    # A batch is handled in one transaction; a partly filled batch waits at most fetch_timeout.
    # Only a message with nothing behind it waits (with messages already waiting, the gathering
    # fetch returns at once): that wait is what merges the next arrivals into its batch, and
    # without it a paced load took more CPU per workload (policy +20 %), which on a loaded host
    # cost more latency than the wait saved.
    batch_size: int = Field(default=256, ge=1, le=5000)
    fetch_timeout: float = Field(default=0.005, gt=0)
    # How long JetStream waits for an ack before redelivering a message.
    ack_wait_seconds: float = 30.0
    max_deliver: int = 20
    nak_delay_seconds: float = 1.0
    outbox_poll_seconds: float = 1.0
    # Health says "degraded" when the oldest outbox row waits longer than this, or when a
    # dead letter was made more recently than this.
    outbox_stuck_seconds: float = 30.0
    dead_letter_alert_seconds: float = 15 * 60.0
    # Inbox rows (ids of handled events) are kept this long, then deleted every
    # inbox_prune_interval_seconds (berth.shared.retention): at least the streams' max_age
    # (30 days), past which no event can be delivered again.
    inbox_retention_days: float = Field(default=31.0, gt=0)
    inbox_prune_interval_seconds: float = Field(default=3600.0, gt=0)

    # Who may act (berth.shared.identity): requests from UIs carry a bearer token that must be
    # signed by a trusted issuer for this audience. People: an OpenID Connect issuer, its keys
    # from oidc_jwks_url (production) or oidc_jwks_file (the development issuer of `berth up`).
    # Applications: tokens the catalog mints, checked against application_jwks_file. With no
    # issuer configured every request from a UI is refused.
    oidc_issuer: str | None = None
    oidc_audience: str = "berth"
    oidc_jwks_url: str | None = None
    oidc_jwks_file: str | None = None
    oidc_email_claim: str = "email"
    oidc_groups_claim: str = "groups"
    application_issuer: str = "berth-applications"
    application_jwks_file: str | None = None
    # Clock skew allowed between the issuer and this process.
    token_leeway_seconds: float = Field(default=30.0, ge=0, le=300)

    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "BERTH_OTLP_ENDPOINT"),
    )
    # Spans also go to the TELEMETRY stream so `berth trace` works without a tracing backend.
    local_traces: bool = True
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, url: str) -> str:
        # A plain postgresql:// URI (what database operators such as CloudNativePG publish in
        # their Secrets) names the same database through asyncpg.
        for scheme in ("postgresql://", "postgres://"):
            if url.startswith(scheme):
                return "postgresql+asyncpg://" + url[len(scheme) :]
        return url

    @property
    def sync_database_url(self) -> str:
        """The same database for plain asyncpg (without the SQLAlchemy driver suffix)."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
