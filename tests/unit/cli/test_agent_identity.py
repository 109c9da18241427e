"""`berth up` names each agent process in its cluster's lease by its slot: the same name for the
process the supervisor starts again, another for every other slot and every other suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.cli.suite import Suite

pytestmark = pytest.mark.unit


def suite(state: Path) -> Suite:
    return Suite(
        state,
        nats_url="nats://x:4222",
        database_url="postgresql://x/y",
        replicas=2,
        clusters=("local", "edge"),
    )


def test_each_agent_slot_keeps_one_lease_identity_and_no_two_share_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inherited from the caller's environment, one name would be every replica's.
    monkeypatch.setenv("BERTH_LEASE_IDENTITY", "everyone")
    first, other = suite(tmp_path / "a"), suite(tmp_path / "b")
    agents = [p for agent in first.agents for p in first.processes_of(agent)]
    assert len(agents) == 4
    names = [first.env(p)["BERTH_LEASE_IDENTITY"] for p in agents]
    # A restarted process gets its slot's name again, even from a new suite on that state.
    assert names == [first.env(p)["BERTH_LEASE_IDENTITY"] for p in agents]
    assert names == [suite(tmp_path / "a").env(p)["BERTH_LEASE_IDENTITY"] for p in agents]
    others = [other.env(p)["BERTH_LEASE_IDENTITY"] for p in agents]
    assert len(set(names) | set(others)) == 8
