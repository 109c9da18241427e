"""The quota rule, shared by intake (which tells whether a workload is over its project's quota)
and the scheduler-adapter (which holds such a workload until the project has room).

A project's deserved GPUs are taken by its workloads that are not yet known to be in a phase, or
are in a phase that holds quota: a workload that finished, failed, was deleted or is stopped
(suspended; its pods are gone) gives its GPUs back.
"""

from __future__ import annotations

from typing import get_args

from berth.contracts.phases import QUOTA_FREE_PHASES, Phase, holds_quota

__all__ = ["QUOTA_HOLDING_PHASES", "exceeds", "holds_quota"]

# Which phases hold quota is a phase fact (berth.contracts.phases); the queries need the list.
QUOTA_HOLDING_PHASES: frozenset[str] = frozenset(get_args(Phase)) - QUOTA_FREE_PHASES


def exceeds(project: str, requested: float, used: float, deserved: float) -> str | None:
    """Why ``requested`` GPUs do not fit beside ``used`` within ``deserved``, or None if they do."""
    if used + requested <= deserved:
        return None
    return (
        f"requests {requested:g} GPU while project {project} uses {used:g} of its deserved "
        f"{deserved:g}"
    )
