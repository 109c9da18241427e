"""Building blocks and system defaults shared by every part of a workload spec."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# System defaults: what berth assumes when neither the submitter nor a policy set a field.
DEFAULT_BACKOFF_LIMIT = 6
DEFAULT_AUTO_DELETION_SECONDS = 30 * 24 * 3600
DEFAULT_TERMINATE_AFTER_PREEMPTION = False
DEFAULT_WORKSPACE_PRIORITY_CLASS = "build"
DEFAULT_NUM_WORKERS = 1
DEFAULT_SLOTS_PER_WORKER = 1
DEFAULT_MIN_REPLICAS = 1
DEFAULT_METRIC_THRESHOLD = 100
DEFAULT_SERVING_PROTOCOL = "http"
DEFAULT_UID_GID_SOURCE = "fromTheImage"
DEFAULT_HOST_IPC = False
DEFAULT_HOST_NETWORK = False

SCALE_TO_ZERO_RETENTION_CHOICES: tuple[int, ...] = (60, 5 * 60, 15 * 60, 30 * 60)
"""Retention periods the submission form offers besides "never" (which keeps minReplicas >= 1)."""

SYSTEM_DEFAULT_KEY = "x-system-default"

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def system_default(value: object) -> dict[str, Any]:
    """``json_schema_extra`` that publishes a field's system default without setting it."""
    return {SYSTEM_DEFAULT_KEY: value}


def raise_problems(problems: Iterable[str]) -> None:
    """Report every cross-field problem of one model at once, under that model's location."""
    found = list(problems)
    if found:
        raise ValueError("; ".join(found))


def duplicates(values: Iterable[str | None]) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for value in values:
        if value is None:
            continue
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    return repeated


def require_fields(*names: str) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` that lists ``names`` as required in the schema, though the model
    gives them defaults (fixed values a producer always sends and a consumer always needs)."""

    def extra(schema: dict[str, Any]) -> None:
        props = schema.get("properties", {})
        wanted = set(schema.get("required", ())) | {n for n in names if n in props}
        if wanted:
            schema["required"] = [n for n in props if n in wanted]

    return extra


class SpecModel(BaseModel):
    """Base of every workload spec model: immutable, and unknown fields are rejected by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)


AssetName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]


class NameValue(SpecModel):
    """A named value (annotation, label); ``exclude`` drops one that a policy default adds."""

    name: str = Field(min_length=1, description="The name (key).")
    value: str | None = Field(default=None, description="The value.")
    exclude: bool | None = Field(
        default=None,
        description="True to exclude an item that a policy default adds to the workload.",
    )


class CredentialRef(SpecModel):
    """A reference to a credential asset by name; the secret value itself never travels."""

    # A DNS-label name also keeps tokens out: they contain characters such as "_" or capitals.
    name: AssetName = Field(
        description="Name of the credential asset (the Kubernetes Secret it becomes)."
    )


class CredentialKeyRef(CredentialRef):
    """One key of a credential asset, e.g. the token of a generic-secret credential."""

    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="Key inside the credential's Secret.",
    )
