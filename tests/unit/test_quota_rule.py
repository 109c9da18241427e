"""The one quota rule intake tells by and the scheduler-adapter admits by."""

from __future__ import annotations

import pytest

from berth.contracts.quota import QUOTA_HOLDING_PHASES, exceeds, holds_quota

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("phase", ["Completed", "Failed", "Deleted", "Stopped"])
def test_finished_stopped_and_deleted_workloads_give_their_quota_back(phase: str) -> None:
    assert not holds_quota(phase)
    assert phase not in QUOTA_HOLDING_PHASES


@pytest.mark.parametrize("phase", [None, "Pending", "Running", "Stopping", "Resuming", "Deleting"])
def test_a_workload_on_its_way_holds_its_quota(phase: str | None) -> None:
    assert holds_quota(phase)


def test_a_workload_fits_up_to_the_deserved_gpus() -> None:
    assert exceeds("p", 1, 1, 2) is None
    assert exceeds("p", 1.5, 1, 2) == "requests 1.5 GPU while project p uses 1 of its deserved 2"
