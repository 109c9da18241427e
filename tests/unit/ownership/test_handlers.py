"""The ownership handlers as specifications: a fake unit of work and the in-memory store, no
server. The same handlers run in the service on PostgreSQL and NATS (tests/e2e)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from berth.contracts.envelope import Actor
from berth.contracts.events import (
    ClusterConfig,
    ClusterConfigChangedData,
    ClusterConfigChangedV1,
    ClusterConfigDesiredV1,
    ClusterConfigRequestedData,
    ClusterSettings,
    WorkloadActionAuthorizedV1,
    WorkloadActionData,
    WorkloadActionDeniedV1,
    WorkloadActionRequestedV1,
    WorkloadRef,
)
from berth.ownership import handlers
from berth.shared.errors import TransientError, is_transient
from berth.shared.testing import FakeUnitOfWork, incoming
from tests.unit.access_builders import rule, rules
from tests.unit.ownership.ownership_fakes import FakeIntake, InMemoryOwnershipStore

pytestmark = pytest.mark.unit

ALICE = Actor(email="alice@example.com")
BOB = Actor(email="bob@example.com")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ref(kind: str = "training", cluster: str = "local") -> WorkloadRef:
    workload_id = uuid.uuid4().hex
    return WorkloadRef(
        workloadId=workload_id,
        name=f"w-{workload_id[:6]}",
        kind=kind,  # type: ignore[arg-type]
        project="team-a",
        clusterId=cluster,
        namespace="berth-team-a",
        queue="team-a",
        createdBy=ALICE.email,
    )


class Ownership:
    """The ownership service's handlers over one in-memory store."""

    def __init__(self) -> None:
        self.store = InMemoryOwnershipStore()
        # Alice and Bob may act on workloads everywhere: what is tested here is what ownership
        # adds on top of access rules (those are tested on their own).
        self.rules = rules(
            rule(ALICE.email, "Department administrator"),
            rule(BOB.email, "Department administrator"),
        )
        self.uow = FakeUnitOfWork(self.store, self.rules)
        self.intake = FakeIntake()

    def _of(self, _unit: object) -> InMemoryOwnershipStore:
        return self.store

    async def created(self, workload: WorkloadRef) -> None:
        """Intake received it (what intake's read model holds is intake's to test)."""
        self.intake.received(workload)

    async def reported(self, cluster: str, protection: bool, at: datetime = T0) -> None:
        event = ClusterConfigChangedV1(
            source="/berth/cluster-sync",
            subject=cluster,
            actor=Actor.system("cluster-sync"),
            time=at,
            data=ClusterConfigChangedData(
                clusterId=cluster,
                config=ClusterConfig(workloadOwnershipProtection=protection),
                changed=["workloadOwnershipProtection"],
            ),
        )
        async with self.uow:
            await handlers.record_cluster_configs([incoming(event)], self.uow, store=self._of)

    async def desired(self, cluster: str, protection: bool | None, at: datetime = T0) -> None:
        event = ClusterConfigDesiredV1(
            source="/berth/cluster-sync",
            subject=cluster,
            actor=Actor.system("cluster-sync"),
            time=at,
            data=ClusterConfigRequestedData(
                clusterId=cluster,
                settings=ClusterSettings(workloadOwnershipProtection=protection),
            ),
        )
        async with self.uow:
            await handlers.record_desired_configs([incoming(event)], self.uow, store=self._of)

    async def phase(self, workload: WorkloadRef, phase: str) -> None:
        """Its cluster reported ``phase`` and intake recorded it."""
        self.intake.phase(workload, phase)

    async def ask(
        self, workload: WorkloadRef, action: str, actor: Actor = ALICE
    ) -> WorkloadActionAuthorizedV1 | WorkloadActionDeniedV1:
        event = WorkloadActionRequestedV1(
            source="/berth/ui",
            subject=workload.workloadId,
            actor=actor,
            data=WorkloadActionData(
                action=action,  # type: ignore[arg-type]
                name=workload.name,
                project=workload.project,
            ),
        )
        mark = len(self.uow.events)
        async with self.uow:
            await handlers.authorize_actions(
                [incoming(event)],
                self.uow,
                targets=self.intake,
                store=self._of,
                rules=lambda _unit: self.rules,
            )
        (answer,) = self.uow.events[mark:]
        assert isinstance(answer, WorkloadActionAuthorizedV1 | WorkloadActionDeniedV1)
        assert answer.causationid == event.id
        return answer


def reason(answer: WorkloadActionAuthorizedV1 | WorkloadActionDeniedV1) -> str:
    assert isinstance(answer, WorkloadActionDeniedV1), f"authorized: {answer.data}"
    return answer.data.reason


# --- who may act -------------------------------------------------------------------------------


async def test_without_protection_anyone_may_act_and_the_authorization_carries_the_workload() -> (
    None
):
    service, workload = Ownership(), ref()
    await service.created(workload)
    answer = await service.ask(workload, "suspend", actor=BOB)
    assert isinstance(answer, WorkloadActionAuthorizedV1)
    assert answer.data.workload == workload
    assert answer.data.action == "suspend"


async def test_with_protection_only_the_creator_may_act_and_others_are_told_why() -> None:
    service, workload = Ownership(), ref()
    await service.created(workload)
    await service.reported("local", True)
    assert isinstance(await service.ask(workload, "delete"), WorkloadActionAuthorizedV1)
    assert reason(await service.ask(workload, "delete", actor=BOB)) == (
        "workload ownership protection is on in cluster local: "
        "only its creator alice@example.com may delete it"
    )


async def test_protection_is_per_cluster() -> None:
    service, here, there = Ownership(), ref(cluster="local"), ref(cluster="edge")
    await service.created(here)
    await service.created(there)
    await service.reported("edge", True)
    assert isinstance(await service.ask(here, "delete", actor=BOB), WorkloadActionAuthorizedV1)
    assert "cluster edge" in reason(await service.ask(there, "delete", actor=BOB))


async def test_the_stricter_of_desired_and_reported_protection_applies() -> None:
    service, workload = Ownership(), ref()
    await service.created(workload)
    # Asked for but not yet reported (an agent that restarted): protected already.
    await service.desired("local", True)
    await service.reported("local", False)
    assert "only its creator" in reason(await service.ask(workload, "delete", actor=BOB))
    # Asked off: still on until the cluster reports it off.
    await service.desired("local", False, at=T0 + timedelta(seconds=1))
    await service.reported("local", True, at=T0 + timedelta(seconds=1))
    assert "only its creator" in reason(await service.ask(workload, "delete", actor=BOB))
    await service.reported("local", False, at=T0 + timedelta(seconds=2))
    assert isinstance(await service.ask(workload, "delete", actor=BOB), WorkloadActionAuthorizedV1)


async def test_a_late_older_report_does_not_undo_a_newer_one() -> None:
    service, workload = Ownership(), ref()
    await service.created(workload)
    await service.reported("local", True, at=T0 + timedelta(seconds=5))
    await service.reported("local", False, at=T0)
    assert "only its creator" in reason(await service.ask(workload, "delete", actor=BOB))


async def test_a_desired_config_without_protection_leaves_it_as_it_was() -> None:
    service, workload = Ownership(), ref()
    await service.created(workload)
    await service.desired("local", True)
    await service.desired("local", None, at=T0 + timedelta(seconds=1))
    assert "only its creator" in reason(await service.ask(workload, "delete", actor=BOB))


async def test_an_unknown_workload_is_denied_with_the_reason() -> None:
    service = Ownership()
    assert reason(await service.ask(ref(), "delete")) == (
        "unknown workload: it was never accepted, or its record has not arrived yet"
    )


# --- what the lifecycle allows -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "action", "refusal"),
    [
        ("Completed", "suspend", "cannot suspend a workload that is Completed"),
        (
            "Running",
            "resume",
            "cannot resume a workload that is Running: only a Stopped workload can be resumed",
        ),
        (
            None,
            "resume",
            "cannot resume a workload that is being created: "
            "only a Stopped workload can be resumed",
        ),
        ("Deleting", "delete", "cannot delete a workload that is Deleting"),
    ],
)
async def test_the_lifecycle_table_refuses_in_one_line(
    phase: str | None, action: str, refusal: str
) -> None:
    service, workload = Ownership(), ref()
    await service.created(workload)
    if phase is not None:
        await service.phase(workload, phase)
    assert reason(await service.ask(workload, action)) == refusal


@pytest.mark.parametrize(
    ("phase", "action"),
    [(None, "delete"), ("Running", "suspend"), ("Stopped", "resume"), ("Stopping", "resume")],
)
async def test_the_lifecycle_table_allows(phase: str | None, action: str) -> None:
    service, workload = Ownership(), ref()
    await service.created(workload)
    if phase is not None:
        await service.phase(workload, phase)
    assert isinstance(await service.ask(workload, action), WorkloadActionAuthorizedV1)


async def test_an_inference_cannot_be_suspended_whatever_its_phase() -> None:
    service, workload = Ownership(), ref(kind="inference")
    await service.created(workload)
    await service.phase(workload, "Running")
    assert reason(await service.ask(workload, "suspend")) == (
        "inference workloads cannot be suspended"
    )


async def test_authorizing_writes_nothing_and_a_batch_answers_each_request() -> None:
    service, mine, unknown = Ownership(), ref(), ref()
    await service.created(mine)
    before = service.store.snapshot()
    requests = [
        WorkloadActionRequestedV1(
            source="/berth/ui",
            subject=w.workloadId,
            actor=ALICE,
            data=WorkloadActionData(action="delete", name=w.name, project=w.project),
        )
        for w in (mine, unknown)
    ]
    async with service.uow:
        await handlers.authorize_actions(
            [incoming(e) for e in requests],
            service.uow,
            targets=service.intake,
            store=service._of,
            rules=lambda _unit: service.rules,
        )
    authorized, denied = service.uow.events
    assert isinstance(authorized, WorkloadActionAuthorizedV1)
    assert authorized.subject == mine.workloadId
    assert isinstance(denied, WorkloadActionDeniedV1)
    assert denied.subject == unknown.workloadId
    assert service.store.snapshot() == before


# --- access rules -------------------------------------------------------------------------------


async def test_an_access_rule_must_grant_the_action_where_the_workload_lives() -> None:
    service, workload = Ownership(), ref()
    service.rules.rules.clear()
    await service.rules.record_created(
        [
            rule(ALICE.email, "L1 researcher", "project", "team-a"),
            rule(BOB.email, "L1 researcher", "project", "team-b"),
        ]
    )
    await service.created(workload)
    assert reason(await service.ask(workload, "delete", actor=BOB)) == (
        "forbidden: bob@example.com may not delete trainings in project team-a "
        "(no access rule grants trainings.delete there)"
    )
    assert reason(await service.ask(workload, "suspend", actor=BOB)) == (
        "forbidden: bob@example.com may not suspend trainings in project team-a "
        "(no access rule grants trainings.update there)"
    )
    assert isinstance(await service.ask(workload, "suspend"), WorkloadActionAuthorizedV1)


async def test_creator_only_protection_applies_on_top_of_the_rules() -> None:
    service, workload = Ownership(), ref()
    await service.created(workload)
    await service.reported("local", True)
    # Bob's role allows deleting in team-a, protection still keeps it alice's.
    assert "only its creator" in reason(await service.ask(workload, "delete", actor=BOB))


async def test_a_request_naming_the_workload_by_name_is_decided_on_that_workload() -> None:
    """Someone who may not read a workload cannot know its id: the request names it."""
    service, workload = Ownership(), ref()
    service.rules.rules.clear()
    await service.rules.record_created([rule(BOB.email, "L1 researcher", "project", "team-b")])
    await service.created(workload)
    by_name = workload.model_copy(update={"workloadId": uuid.uuid4().hex})
    assert reason(await service.ask(by_name, "delete", actor=BOB)).startswith(
        "forbidden: bob@example.com may not delete trainings in project team-a"
    )
    await service.rules.record_created([rule(BOB.email, "L1 researcher", "project", "team-a")])
    answer = await service.ask(by_name, "suspend", actor=BOB)
    assert isinstance(answer, WorkloadActionAuthorizedV1)
    assert answer.subject == workload.workloadId


async def test_a_name_stands_for_its_live_workload_not_an_earlier_deleted_one() -> None:
    service, earlier = Ownership(), ref()
    await service.created(earlier)
    service.intake.deleted(earlier)
    later = earlier.model_copy(update={"workloadId": uuid.uuid4().hex})
    await service.created(later)
    by_name = earlier.model_copy(update={"workloadId": uuid.uuid4().hex})
    answer = await service.ask(by_name, "delete")
    assert isinstance(answer, WorkloadActionAuthorizedV1)
    assert answer.subject == later.workloadId


# --- asking intake ------------------------------------------------------------------------------


def requests_for(*workloads: WorkloadRef) -> list[WorkloadActionRequestedV1]:
    return [
        WorkloadActionRequestedV1(
            source="/berth/ui",
            subject=w.workloadId,
            actor=ALICE,
            data=WorkloadActionData(action="delete", name=w.name, project=w.project),
        )
        for w in workloads
    ]


async def test_a_batch_asks_intake_once_by_id_and_by_name() -> None:
    service, one, two = Ownership(), ref(), ref()
    await service.created(one)
    await service.created(two)
    async with service.uow:
        await handlers.authorize_actions(
            [incoming(e) for e in requests_for(one, two)],
            service.uow,
            targets=service.intake,
            store=service._of,
            rules=lambda _unit: service.rules,
        )
    assert service.intake.questions == [
        (
            [one.workloadId, two.workloadId],
            [(one.project, one.name), (two.project, two.name)],
        )
    ]
    assert [type(e) for e in service.uow.events] == [WorkloadActionAuthorizedV1] * 2


async def test_while_intake_cannot_answer_the_batch_is_retried_not_denied() -> None:
    """The consumer takes a transient error for an outage: the requests come back after a
    growing delay and are never counted as failed (berth.shared.consumer)."""
    service, workload = Ownership(), ref()
    await service.created(workload)
    service.intake.down = True
    with pytest.raises(TransientError) as raised:
        async with service.uow:
            await handlers.authorize_actions(
                [incoming(e) for e in requests_for(workload)],
                service.uow,
                targets=service.intake,
                store=service._of,
                rules=lambda _unit: service.rules,
            )
    assert is_transient(raised.value)
    assert service.uow.events == []
    service.intake.down = False
    assert isinstance(await service.ask(workload, "delete"), WorkloadActionAuthorizedV1)
