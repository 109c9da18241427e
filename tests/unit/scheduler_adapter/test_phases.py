from __future__ import annotations

import pytest

from berth.scheduler_adapter.backend import PodStatus, WorkloadSnapshot
from berth.scheduler_adapter.phases import derive_phase

pytestmark = pytest.mark.unit


def pod(
    phase: str = "Running",
    *,
    scheduled: bool = True,
    ready: bool = True,
    reason: str = "",
    message: str = "",
    name: str = "p",
) -> PodStatus:
    node = "node-1" if scheduled else None
    return PodStatus(name, phase, scheduled, ready, reason, message, node)


def snap(
    *pods: PodStatus,
    expected: int = 1,
    conditions: tuple[tuple[str, str, str], ...] = (),
    exists: bool = True,
    suspended: bool = False,
) -> WorkloadSnapshot:
    return WorkloadSnapshot("wl-1", "ns", exists, conditions, pods, expected, suspended)


def test_no_pods_yet_is_creating() -> None:
    assert derive_phase(snap()) == ("Creating", "", "", 0, 1)


def test_unscheduled_pod_is_pending_with_the_scheduler_reason() -> None:
    waiting = pod("Pending", scheduled=False, ready=False, reason="Unschedulable", message="no GPU")
    assert derive_phase(snap(waiting)) == ("Pending", "no GPU", "Unschedulable", 0, 1)


def test_one_unscheduled_pod_keeps_a_gang_pending() -> None:
    phase, *_ = derive_phase(snap(pod(), pod("Pending", scheduled=False, ready=False), expected=2))
    assert phase == "Pending"


def test_scheduled_not_ready_is_initializing() -> None:
    starting = pod("Pending", ready=False, reason="ContainerCreating")
    assert derive_phase(snap(starting)) == ("Initializing", "", "ContainerCreating", 0, 1)


def test_all_ready_is_running() -> None:
    assert derive_phase(snap(pod(name="a"), pod(name="b"), expected=2)) == ("Running", "", "", 2, 2)


def test_fewer_ready_pods_than_expected_is_not_running() -> None:
    phase, *_ = derive_phase(snap(pod(), expected=2))
    assert phase == "Initializing"


def test_a_started_pod_losing_readiness_next_to_ready_ones_is_degraded() -> None:
    lost = pod(ready=False, reason="Unhealthy", message="probe failed", name="b")
    assert derive_phase(snap(pod(name="a"), lost, expected=2)) == (
        "Degraded",
        "probe failed",
        "Unhealthy",
        2,
        2,
    )


def test_crash_loop_is_degraded_with_ready_replicas_and_failed_without() -> None:
    crashing = pod(ready=False, reason="CrashLoopBackOff", message="back-off", name="b")
    assert derive_phase(snap(pod(name="a"), crashing, expected=2))[0] == "Degraded"
    assert derive_phase(snap(crashing))[:3] == ("Failed", "back-off", "CrashLoopBackOff")


def test_image_pull_backoff_is_failed_but_a_first_pull_error_is_not() -> None:
    backoff = pod("Pending", ready=False, reason="ImagePullBackOff", message="Back-off pulling")
    assert derive_phase(snap(backoff))[:3] == ("Failed", "Back-off pulling", "ImagePullBackOff")
    first = pod("Pending", ready=False, reason="ErrImagePull", message="pull failed")
    assert derive_phase(snap(first))[:3] == ("Initializing", "pull failed", "ErrImagePull")


def test_complete_condition_is_completed() -> None:
    done = pod("Succeeded", ready=False)
    assert derive_phase(snap(done, conditions=(("Complete", "", ""),)))[0] == "Completed"
    assert derive_phase(snap(done, conditions=(("Succeeded", "", ""),)))[0] == "Completed"


def test_failed_condition_is_failed_with_its_reason() -> None:
    failed = pod("Failed", ready=False)
    condition = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert derive_phase(snap(failed, conditions=(condition,))) == (
        "Failed",
        "Job has reached the specified backoff limit",
        "BackoffLimitExceeded",
        0,
        1,
    )


def test_failed_wins_over_complete() -> None:
    conditions = (("Complete", "", ""), ("Failed", "DeadlineExceeded", "too slow"))
    assert derive_phase(snap(conditions=conditions))[0] == "Failed"


def test_suspended_with_pods_is_stopping_and_without_is_stopped() -> None:
    assert derive_phase(snap(pod(reason="Terminating"), suspended=True))[0] == "Stopping"
    assert derive_phase(snap(suspended=True)) == ("Stopped", "", "", 0, 1)


def test_gone_is_deleted() -> None:
    assert derive_phase(snap(exists=False))[0] == "Deleted"


def test_finished_pods_are_not_active() -> None:
    # A Job retrying: the failed pod of the last attempt stays listed next to the new one.
    retry = pod("Pending", scheduled=False, ready=False, name="new")
    assert derive_phase(snap(pod("Failed", ready=False, name="old"), retry))[0] == "Pending"
    between_attempts = derive_phase(snap(pod("Failed", ready=False)))
    assert between_attempts[:3] == ("Creating", "retrying after a failed attempt", "BackOff")


def test_succeeded_pods_count_towards_running_parallel_jobs() -> None:
    phase, *_ = derive_phase(
        snap(pod("Succeeded", ready=False, name="a"), pod(name="b"), expected=2)
    )
    assert phase == "Running"


def test_scaled_to_zero_is_running() -> None:
    assert derive_phase(snap(expected=0))[0] == "Running"
