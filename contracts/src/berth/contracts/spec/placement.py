"""Where a workload's pods may run: pod affinity and tolerations."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from berth.contracts.spec.base import SpecModel, raise_problems


class PodAffinity(SpecModel):
    """Co-locate the workload with others that share a node label (same node, zone, ...)."""

    type: Literal["Required", "Preferred"] = Field(description="Required or preferred affinity.")
    key: str = Field(min_length=1, description="The node label key (topology) to co-locate on.")


class Toleration(SpecModel):
    """Lets the workload's pods run on nodes with a matching taint."""

    name: str = Field(min_length=1, description="Unique name of this toleration.")
    operator: Literal["Equal", "Exists"] | None = Field(
        default=None, description="Equal matches key and value; Exists matches any value."
    )
    key: str | None = Field(default=None, description="The taint key the toleration applies to.")
    value: str | None = Field(
        default=None, description="The taint value to match; only with operator Equal."
    )
    effect: Literal["NoSchedule", "NoExecute", "PreferNoSchedule"] | None = Field(
        default=None, description="The taint effect to match; unset matches every effect."
    )
    seconds: int | None = Field(
        default=None, ge=1, description="How long a NoExecute taint is tolerated."
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        problems: list[str] = []
        if self.operator == "Exists" and self.value is not None:
            problems.append("value must be unset when operator is 'Exists'")
        if self.key is None and self.operator != "Exists":
            problems.append("key is required unless operator is 'Exists'")
        if self.seconds is not None and self.effect != "NoExecute":
            problems.append("seconds requires effect 'NoExecute'")
        raise_problems(problems)
        return self
