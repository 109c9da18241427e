"""The agent's name in its lease: the configured one (stable across restarts of a replica), else
one of its own per process."""

from __future__ import annotations

import pytest

from berth.scheduler_adapter.config import SchedulerAdapterSettings
from berth.scheduler_adapter.lease import agent_elector

pytestmark = pytest.mark.unit


def test_a_configured_identity_is_the_lease_holder_name() -> None:
    elector, _store = agent_elector(SchedulerAdapterSettings(lease_identity="berth-agent-7c9d-x2"))
    assert elector.identity == "berth-agent-7c9d-x2"


def test_without_one_each_process_is_a_replica_of_its_own() -> None:
    settings = SchedulerAdapterSettings(lease_identity=None)
    names = {agent_elector(settings)[0].identity for _ in range(3)}
    assert len(names) == 3
