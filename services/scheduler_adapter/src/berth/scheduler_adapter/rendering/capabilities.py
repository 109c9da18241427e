"""The capabilities a backend's config reports; some kinds render differently with them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from berth.contracts.capabilities import KNATIVE_FEATURES, ClusterCapabilities, KnativeCapabilities

__all__ = ["ClusterCapabilities", "from_config"]


def from_config(config: Mapping[str, Any]) -> ClusterCapabilities:
    """From a backend's ``read_config()``. A config without ``capabilities`` (an older agent's)
    still says whether Knative is there; Knative is then assumed set up as berth needs it."""
    reported = config.get("capabilities")
    if reported is not None:
        return ClusterCapabilities.model_validate(reported)
    knative = (
        KnativeCapabilities(features=dict(KNATIVE_FEATURES)) if config.get("knative") else None
    )
    return ClusterCapabilities(knative=knative)
