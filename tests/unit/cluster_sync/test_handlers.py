"""The cluster-sync handlers as specifications: a fake unit of work and the in-memory registry,
no server. The same handlers run in the service on PostgreSQL and NATS
(tests/integration/clusters)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from berth.cluster_sync import handlers
from berth.contracts.envelope import Actor
from berth.contracts.events import (
    ClusterConfig,
    ClusterConfigChangedV1,
    ClusterConfigDesiredV1,
    ClusterConfigRejectedV1,
    ClusterConfigReportedData,
    ClusterConfigReportedV1,
    ClusterConfigRequestedData,
    ClusterConfigRequestedV1,
    ClusterSettings,
    ClusterUpdatedV1,
)
from berth.shared.testing import FakeUnitOfWork, incoming
from tests.unit.access_builders import rule, rules
from tests.unit.cluster_sync.cluster_sync_fakes import InMemoryClusterSyncStore

pytestmark = pytest.mark.unit

AGENT = Actor.system("scheduler-adapter")
ADMIN = Actor(email="admin@example.com")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def report(
    cluster: str = "local", at: datetime = T0, *, gpus: int = 16, **config: Any
) -> ClusterConfigReportedV1:
    return ClusterConfigReportedV1(
        source="/berth/scheduler-adapter",
        subject=cluster,
        actor=AGENT,
        time=at,
        data=ClusterConfigReportedData(
            clusterId=cluster,
            backend="simulated",
            config=ClusterConfig(**config),
            nodePools=["a100", "default"],
            gpus=gpus,
        ),
    )


def request(cluster: str = "local", at: datetime = T0, **settings: Any) -> ClusterConfigRequestedV1:
    return ClusterConfigRequestedV1(
        source="/berth/ui",
        subject=cluster,
        actor=ADMIN,
        time=at,
        data=ClusterConfigRequestedData(clusterId=cluster, settings=ClusterSettings(**settings)),
    )


class ClusterSync:
    """The cluster-sync service's handlers over one in-memory registry."""

    def __init__(self) -> None:
        self.store = InMemoryClusterSyncStore()
        # The administrator may configure every cluster (access rules are tested on their own).
        self.rules = rules()
        self.uow = FakeUnitOfWork(self.store, self.rules)

    def _of(self, _unit: object) -> InMemoryClusterSyncStore:
        return self.store

    async def reports(self, *events: ClusterConfigReportedV1) -> list[Any]:
        mark = len(self.uow.events)
        async with self.uow:
            await handlers.record_reports([incoming(e) for e in events], self.uow, store=self._of)
        return self.uow.events[mark:]

    async def requests(self, *events: ClusterConfigRequestedV1) -> list[Any]:
        mark = len(self.uow.events)
        async with self.uow:
            await handlers.forward_config_requests(
                [incoming(e) for e in events],
                self.uow,
                store=self._of,
                rules=lambda _unit: self.rules,
            )
        return self.uow.events[mark:]

    async def silence(self, now: datetime, after: float = 20.0) -> list[Any]:
        mark = len(self.uow.events)
        async with self.uow:
            await handlers.mark_disconnected(
                now, self.uow, after=timedelta(seconds=after), store=self._of
            )
        return self.uow.events[mark:]


def types(events: list[Any]) -> list[type]:
    return [type(e) for e in events]


async def test_a_first_report_registers_the_cluster_and_announces_it() -> None:
    sync = ClusterSync()
    updated, changed = await sync.reports(report(workloadOwnershipProtection=True))
    assert isinstance(updated, ClusterUpdatedV1)
    assert (updated.subject, updated.actor) == ("local", handlers.ACTOR)
    assert (updated.data.backend, updated.data.gpus, updated.data.reportedAt) == (
        "simulated",
        16,
        T0,
    )
    assert isinstance(changed, ClusterConfigChangedV1)
    assert "workloadOwnershipProtection" in changed.data.changed
    (registered,) = sync.store.registry
    assert registered.announced and registered.record == updated.data


async def test_a_heartbeat_that_changes_nothing_emits_nothing() -> None:
    sync = ClusterSync()
    await sync.reports(report())
    assert await sync.reports(report(at=T0 + timedelta(seconds=10))) == []
    (registered,) = sync.store.registry
    assert registered.record.reportedAt == T0 + timedelta(seconds=10)


async def test_a_report_that_changes_the_inventory_only_announces_it_again() -> None:
    sync = ClusterSync()
    await sync.reports(report())
    (updated,) = await sync.reports(report(at=T0 + timedelta(seconds=10), gpus=8))
    assert isinstance(updated, ClusterUpdatedV1) and updated.data.gpus == 8


async def test_a_config_change_is_announced_with_the_keys_that_changed() -> None:
    sync = ClusterSync()
    await sync.reports(report())
    events = await sync.reports(report(at=T0 + timedelta(seconds=10), knative=True))
    assert types(events) == [ClusterUpdatedV1, ClusterConfigChangedV1]
    assert events[1].data.changed == ["knative"]


async def test_a_late_older_report_does_not_undo_a_newer_one() -> None:
    sync = ClusterSync()
    await sync.reports(report(at=T0 + timedelta(seconds=10), knative=True))
    assert await sync.reports(report(at=T0, knative=False)) == []
    (registered,) = sync.store.registry
    assert registered.record.config.knative is True


async def test_a_config_request_is_stored_and_sent_down() -> None:
    sync = ClusterSync()
    asked = request(workloadOwnershipProtection=True)
    (desired,) = await sync.requests(asked)
    assert isinstance(desired, ClusterConfigDesiredV1)
    assert desired.data == asked.data
    assert desired.causationid == asked.id
    assert sync.store.desired_configs.get("local") == {"workloadOwnershipProtection": True}


async def test_config_requests_merge_into_the_desired_config_before_the_cluster_registers() -> None:
    sync = ClusterSync()
    # An unset setting stays as it was; a later request of the same batch wins.
    await sync.requests(request(workloadOwnershipProtection=True))
    await sync.requests(
        request(at=T0 + timedelta(seconds=1)),
        request(at=T0 + timedelta(seconds=2), workloadOwnershipProtection=False),
        request(at=T0 + timedelta(seconds=3), workloadOwnershipProtection=True),
    )
    assert sync.store.desired_configs.get("local") == {"workloadOwnershipProtection": True}
    assert list(sync.store.registry) == []


async def test_a_report_disagreeing_with_the_desired_config_sends_it_down_again() -> None:
    sync = ClusterSync()
    await sync.requests(request(workloadOwnershipProtection=True))
    events = await sync.reports(report(workloadOwnershipProtection=False))
    assert types(events) == [ClusterUpdatedV1, ClusterConfigChangedV1, ClusterConfigDesiredV1]
    desired = events[-1]
    assert (desired.subject, desired.actor) == ("local", handlers.ACTOR)
    assert desired.data.settings.workloadOwnershipProtection is True
    # Every later report that still disagrees sends it again: nothing depends on one event.
    again = await sync.reports(report(at=T0 + timedelta(seconds=10)))
    assert types(again) == [ClusterConfigDesiredV1]
    # Once the cluster reports it, nothing more goes down.
    agreed = await sync.reports(
        report(at=T0 + timedelta(seconds=20), workloadOwnershipProtection=True)
    )
    assert ClusterConfigDesiredV1 not in types(agreed)


async def test_a_batch_of_reports_sends_the_desired_config_once_per_cluster() -> None:
    sync = ClusterSync()
    await sync.requests(
        request(workloadOwnershipProtection=True),
        request("edge", workloadOwnershipProtection=True),
    )
    events = await sync.reports(
        report(), report(at=T0 + timedelta(seconds=1)), report("edge"), report("other")
    )
    desired = [e for e in events if isinstance(e, ClusterConfigDesiredV1)]
    assert sorted(e.subject for e in desired) == ["edge", "local"]
    assert sorted(r.record.clusterId for r in sync.store.registry) == ["edge", "local", "other"]


# --- access rules ------------------------------------------------------------------------------


async def test_a_config_request_without_cluster_config_update_there_is_rejected() -> None:
    sync = ClusterSync()
    bob = Actor(email="bob@example.com")
    await sync.rules.record_created(
        [
            rule(bob.email, "Department administrator"),  # no cluster-config at all
            rule("ops@example.com", "System administrator", "cluster", "edge"),
        ]
    )
    denied = request(workloadOwnershipProtection=True).model_copy(update={"actor": bob})
    elsewhere = request(workloadOwnershipProtection=True).model_copy(
        update={"actor": Actor(email="ops@example.com")}
    )
    events = await sync.requests(
        denied, elsewhere, request("local", workloadOwnershipProtection=True)
    )
    assert types(events) == [
        ClusterConfigRejectedV1,
        ClusterConfigRejectedV1,
        ClusterConfigDesiredV1,
    ]
    assert events[0].data.reason == (
        "forbidden: bob@example.com may not configure cluster-config in cluster local "
        "(no access rule grants cluster-config.update there)"
    )
    assert events[0].causationid == denied.id
    assert (await sync.store.desired(["local"]))["local"] == {"workloadOwnershipProtection": True}


async def test_a_silent_agent_marks_its_cluster_disconnected_once_and_no_other() -> None:
    sync = ClusterSync()
    await sync.reports(report("local"), report("edge"))
    await sync.reports(report("local", T0 + timedelta(seconds=15)))
    assert await sync.silence(T0 + timedelta(seconds=19)) == []
    (updated,) = await sync.silence(T0 + timedelta(seconds=21))
    assert isinstance(updated, ClusterUpdatedV1)
    assert (updated.subject, updated.data.connected, updated.data.reportedAt) == ("edge", False, T0)
    assert await sync.silence(T0 + timedelta(seconds=30)) == []
    local = sync.store.registry.get("local")
    assert local is not None and local.record.connected


async def test_the_next_report_announces_the_cluster_connected_again() -> None:
    sync = ClusterSync()
    await sync.reports(report("edge"))
    await sync.silence(T0 + timedelta(seconds=21))
    (updated,) = await sync.reports(report("edge", T0 + timedelta(seconds=40)))
    assert isinstance(updated, ClusterUpdatedV1) and updated.data.connected
