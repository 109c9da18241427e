"""Who may delete, suspend or resume a workload."""

from __future__ import annotations

from berth.ownership.rules import decide


def test_creator_may_always_act() -> None:
    assert (
        decide(actor="a@x", action="delete", creator="a@x", cluster_id="c", protection=True) is None
    )


def test_others_may_act_without_protection() -> None:
    assert (
        decide(actor="b@x", action="delete", creator="a@x", cluster_id="c", protection=False)
        is None
    )


def test_others_are_denied_with_protection() -> None:
    reason = decide(actor="b@x", action="suspend", creator="a@x", cluster_id="c", protection=True)
    assert reason == (
        "workload ownership protection is on in cluster c: only its creator a@x may suspend it"
    )


def test_unknown_workload_is_denied() -> None:
    reason = decide(actor="a@x", action="delete", creator=None, cluster_id=None, protection=False)
    assert reason is not None and reason.startswith("unknown workload")
