"""Workload phases, and the facts about them every service and client relies on.

One place for: the phases a workload goes through, which of them are terminal (per kind), which
no longer hold the project's quota, and what each action leads to. Strings only, so that any
client can use them; the AsyncAPI documents publish them too.
"""

from __future__ import annotations

from typing import Literal

from berth.contracts.workload import COMPLETING_KINDS, WORKLOAD_KINDS, WorkloadKind

Phase = Literal[
    "Creating",
    "Pending",
    "Initializing",
    "Running",
    "Degraded",
    "Updating",
    "Completed",
    "Failed",
    "Stopping",
    "Stopped",
    "Resuming",
    "Deleting",
    "Deleted",
    "Terminating",
    "Unknown",
]

WorkloadAction = Literal["delete", "suspend", "resume"]

TERMINAL_PHASES: frozenset[Phase] = frozenset({"Completed", "Failed", "Deleted"})
"""After any of these nothing more happens to a workload (of any kind)."""


TERMINAL_PHASES_BY_KIND: dict[WorkloadKind, frozenset[Phase]] = {
    kind: TERMINAL_PHASES if kind in COMPLETING_KINDS else TERMINAL_PHASES - {"Completed"}
    for kind in WORKLOAD_KINDS
}
"""The terminal phases each kind can reach."""

SETTLED_PHASES_BY_KIND: dict[WorkloadKind, frozenset[Phase]] = {
    kind: TERMINAL_PHASES_BY_KIND[kind] | (frozenset() if kind in COMPLETING_KINDS else {"Running"})
    for kind in WORKLOAD_KINDS
}
"""Where a submission has got as far as it will by itself: terminal, or Running for the kinds
that have no end (what a client waiting for a submission waits for)."""

QUOTA_FREE_PHASES: frozenset[Phase] = TERMINAL_PHASES | {"Stopped"}
"""A workload in one of these holds none of its project's quota (a Stopped one has no pods);
in every other phase, and before its first phase, it holds what it requested."""


def holds_quota(phase: str | None) -> bool:
    return phase not in QUOTA_FREE_PHASES


ACTION_RESULTS: dict[WorkloadAction, Phase] = {
    "delete": "Deleted",
    "suspend": "Stopped",
    "resume": "Running",
}
"""The phase an authorized action leads to once the cluster has carried it out."""

ACTION_TRANSIT: dict[WorkloadAction, Phase] = {
    "delete": "Deleting",
    "suspend": "Stopping",
    "resume": "Resuming",
}
"""The phase an action puts a workload in at once, before the cluster confirms the result."""
