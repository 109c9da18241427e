"""The names of the workload kinds, importable without pydantic (the CLI reads them at start).

``WorkloadKind`` is the static spelling of the submission union's kinds (``workload.py``), which
checks at import that the two agree: adding a kind adds it to both.
"""

from __future__ import annotations

from typing import Literal, get_args

WorkloadKind = Literal["workspace", "training", "distributed", "inference"]

KIND_NAMES: tuple[WorkloadKind, ...] = get_args(WorkloadKind)
"""Every kind by name, for the CLI's choices and for error locations (``workload.WORKLOAD_KINDS``
is the same, derived from the submission union)."""
