"""What the target cluster offers beyond core Kubernetes; some kinds render differently on it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClusterCapabilities:
    # Knative Serving installed: inference becomes a Knative Service that can scale to zero.
    knative: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ClusterCapabilities:
        """From a backend's ``read_config()``."""
        return cls(knative=bool(config.get("knative", False)))
