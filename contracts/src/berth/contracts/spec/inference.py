"""Inference-only parts of a spec: serving port, replica autoscaling, and the served model."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from berth.contracts.spec.base import (
    DEFAULT_METRIC_THRESHOLD,
    DEFAULT_MIN_REPLICAS,
    DEFAULT_SERVING_PROTOCOL,
    SCALE_TO_ZERO_RETENTION_CHOICES,
    CredentialRef,
    SpecModel,
    raise_problems,
    system_default,
)

AutoscalingMetric = Literal["throughput", "concurrency", "latency"]

SCALE_TO_ZERO_METRICS: frozenset[str] = frozenset({"throughput", "concurrency"})
"""Metrics that can wake a service scaled to zero; latency cannot be measured with no replica."""


class ServingPort(SpecModel):
    """The port on which the inference server listens."""

    container: int = Field(ge=1, le=65535, description="The container port.")
    protocol: Literal["http", "grpc"] | None = Field(
        default=None,
        description="Protocol served on the port.",
        json_schema_extra=system_default(DEFAULT_SERVING_PROTOCOL),
    )


class Autoscaling(SpecModel):
    """Replica autoscaling; minReplicas 0 enables scale-to-zero."""

    minReplicas: int | None = Field(
        default=None,
        ge=0,
        description="Fewest replicas; 0 scales to zero when idle.",
        json_schema_extra=system_default(DEFAULT_MIN_REPLICAS),
    )
    maxReplicas: int | None = Field(
        default=None,
        ge=1,
        description="Most replicas; minReplicas when unset (1 if minReplicas is 0).",
    )
    metric: AutoscalingMetric | None = Field(
        default=None,
        description="Metric that triggers a new replica (throughput and latency per second).",
    )
    metricThreshold: int | None = Field(
        default=None,
        ge=1,
        description="Value of metric above which a replica is added; requires metric.",
        json_schema_extra=system_default(DEFAULT_METRIC_THRESHOLD),
    )
    scaleToZeroRetentionSeconds: int | None = Field(
        default=None,
        ge=0,
        le=3600,
        description=(
            "Idle seconds before the last replica is removed; only with minReplicas 0. "
            f"The form offers {', '.join(str(s) for s in SCALE_TO_ZERO_RETENTION_CHOICES)}."
        ),
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        problems: list[str] = []
        min_replicas = DEFAULT_MIN_REPLICAS if self.minReplicas is None else self.minReplicas
        if self.maxReplicas is not None and self.maxReplicas < min_replicas:
            problems.append(f"maxReplicas must be >= minReplicas ({min_replicas})")
        if self.metricThreshold is not None and self.metric is None:
            problems.append("metricThreshold requires metric")
        if self.scaleToZeroRetentionSeconds is not None and min_replicas != 0:
            problems.append("scaleToZeroRetentionSeconds requires minReplicas == 0")
        if min_replicas == 0 and self.metric not in (None, *SCALE_TO_ZERO_METRICS):
            problems.append(f"metric {self.metric!r} cannot scale to zero (minReplicas 0)")
        raise_problems(problems)
        return self


class ModelSource(SpecModel):
    """A model served from a catalog (berth's or Hugging Face) instead of a custom image."""

    catalog: Literal["berth", "huggingface"] = Field(description="Which catalog holds the model.")
    modelName: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9][-A-Za-z0-9._/]*$",
        description="The model, e.g. meta-llama/Llama-3.1-8B-Instruct on Hugging Face.",
    )
    credential: CredentialRef | None = Field(
        default=None,
        description="Credential asset holding the catalog access token; never the token itself.",
    )
