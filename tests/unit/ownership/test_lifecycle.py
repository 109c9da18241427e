"""Which actions a workload's phase and kind allow (one table)."""

from __future__ import annotations

import pytest

from berth.contracts.events import Phase
from berth.contracts.lifecycle import ALLOWED, refusal

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("kind", "phase", "action", "reason"),
    [
        ("training", "Completed", "suspend", "cannot suspend a workload that is Completed"),
        ("training", "Failed", "suspend", "cannot suspend a workload that is Failed"),
        ("workspace", "Stopped", "suspend", "cannot suspend a workload that is Stopped"),
        (
            "workspace",
            "Running",
            "resume",
            "cannot resume a workload that is Running: only a Stopped workload can be resumed",
        ),
        ("inference", "Running", "suspend", "inference workloads cannot be suspended"),
        ("inference", "Stopped", "resume", "inference workloads cannot be resumed"),
        ("training", "Deleted", "delete", "cannot delete a workload that is Deleted"),
        ("training", "Deleting", "delete", "cannot delete a workload that is Deleting"),
    ],
)
def test_impossible_actions_are_refused_in_one_line(
    kind: str, phase: str, action: str, reason: str
) -> None:
    assert refusal(kind=kind, phase=phase, action=action) == reason


@pytest.mark.parametrize(
    ("kind", "phase", "action"),
    [
        ("training", None, "suspend"),
        ("training", "Pending", "suspend"),
        ("workspace", "Running", "suspend"),
        ("workspace", "Stopped", "resume"),
        ("workspace", "Stopping", "resume"),
        ("inference", "Running", "delete"),
        ("training", "Completed", "delete"),
        ("training", "Failed", "delete"),
        ("distributed", "Stopped", "delete"),
    ],
)
def test_possible_actions_pass(kind: str, phase: str | None, action: str) -> None:
    assert refusal(kind=kind, phase=phase, action=action) is None


def test_every_phase_has_its_row() -> None:
    assert set(ALLOWED) == {"", *Phase.__args__}  # type: ignore[attr-defined]
