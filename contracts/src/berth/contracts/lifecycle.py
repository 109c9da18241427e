"""Which action a workload's phase and kind allow: ONE table, as Run:ai's rules have it.

An action the phase does not allow is denied at once with a one-line reason, and nothing is
asked of the cluster, so the workload's history stays as it was (no Stopping after Completed).
"""

from __future__ import annotations

from typing import Final

from berth.contracts.workload import SUSPENDABLE_KINDS, WORKLOAD_KINDS

# phase -> the actions allowed in it. "" is a workload accepted but not yet reported by its
# cluster (it is being created). A phase missing from the table allows delete only.
ALLOWED: Final[dict[str, frozenset[str]]] = {
    "": frozenset({"delete", "suspend"}),
    "Creating": frozenset({"delete", "suspend"}),
    "Pending": frozenset({"delete", "suspend"}),
    "Initializing": frozenset({"delete", "suspend"}),
    "Running": frozenset({"delete", "suspend"}),
    "Degraded": frozenset({"delete", "suspend"}),
    "Updating": frozenset({"delete", "suspend"}),
    "Resuming": frozenset({"delete", "suspend"}),
    "Unknown": frozenset({"delete"}),
    # Resuming a workload still stopping takes the suspension back.
    "Stopping": frozenset({"delete", "resume"}),
    "Stopped": frozenset({"delete", "resume"}),
    "Completed": frozenset({"delete"}),
    "Failed": frozenset({"delete"}),
    "Terminating": frozenset(),
    "Deleting": frozenset(),
    "Deleted": frozenset(),
}

# Kinds that never allow an action, whatever the phase.
NEVER: Final[dict[str, frozenset[str]]] = {
    kind: frozenset({"suspend", "resume"})
    for kind in WORKLOAD_KINDS
    if kind not in SUSPENDABLE_KINDS
}


def refusal(*, kind: str | None, phase: str | None, action: str) -> str | None:
    """None when ``action`` is possible for a workload of ``kind`` in ``phase``; otherwise why
    not, in one line."""
    if kind and action in NEVER.get(kind, frozenset()):
        return f"{kind} workloads cannot be {_past(action)}"
    current = phase or ""
    if action in ALLOWED.get(current, frozenset({"delete"})):
        return None
    shown = phase or "being created"
    if action == "resume":
        return f"cannot resume a workload that is {shown}: only a Stopped workload can be resumed"
    return f"cannot {action} a workload that is {shown}"


def _past(action: str) -> str:
    return {"suspend": "suspended", "resume": "resumed", "delete": "deleted"}[action]
