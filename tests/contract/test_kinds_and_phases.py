"""Workload kinds and phase facts have one source each in the contracts."""

from __future__ import annotations

import typing

import pytest

from berth.contracts.phases import (
    ACTION_RESULTS,
    SETTLED_PHASES_BY_KIND,
    TERMINAL_PHASES,
    TERMINAL_PHASES_BY_KIND,
    Phase,
    holds_quota,
)
from berth.contracts.policy import POLICY_TYPES
from berth.contracts.workload import SUBMISSION_CLASSES, WORKLOAD_KINDS, WorkloadKind

pytestmark = pytest.mark.unit


def test_the_kinds_are_the_submission_unions() -> None:
    assert WORKLOAD_KINDS == ("workspace", "training", "distributed", "inference")
    assert len(SUBMISSION_CLASSES) == len(WORKLOAD_KINDS)
    assert set(typing.get_args(WorkloadKind)) == set(WORKLOAD_KINDS)
    assert POLICY_TYPES == WORKLOAD_KINDS


def test_phase_facts_name_only_phases() -> None:
    phases = set(typing.get_args(Phase))
    assert phases >= TERMINAL_PHASES
    assert set(ACTION_RESULTS.values()) <= phases
    for kind in WORKLOAD_KINDS:
        assert TERMINAL_PHASES_BY_KIND[kind] <= TERMINAL_PHASES
        assert TERMINAL_PHASES_BY_KIND[kind] <= SETTLED_PHASES_BY_KIND[kind]
    assert "Completed" not in TERMINAL_PHASES_BY_KIND["workspace"]
    assert "Running" in SETTLED_PHASES_BY_KIND["inference"]
    assert "Running" not in SETTLED_PHASES_BY_KIND["training"]


@pytest.mark.parametrize(
    ("phase", "holds"),
    [
        (None, True),
        ("Pending", True),
        ("Running", True),
        ("Stopping", True),
        ("Stopped", False),
        ("Completed", False),
        ("Failed", False),
        ("Deleted", False),
    ],
)
def test_which_phases_hold_quota(phase: str | None, holds: bool) -> None:
    assert holds_quota(phase) is holds
