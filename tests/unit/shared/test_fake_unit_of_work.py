"""The fake unit of work handler tests rely on: what it records, and how it rolls back."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider

from berth.contracts.envelope import Actor
from berth.contracts.events import (
    Issue,
    PolicyApprovedV1,
    PolicyRejectedData,
    PolicyRejectedV1,
    WorkloadRef,
)
from berth.shared.consumer import Publishes, UndeclaredEventError, UnitOfWork, trace_context
from berth.shared.telemetry import context_of, inject
from berth.shared.testing import FakeUnitOfWork, InMemoryTable, incoming


@dataclass(frozen=True)
class Row:
    name: str
    size: int


def _event(name: str) -> PolicyRejectedV1:
    workload = WorkloadRef(
        workloadId=name,
        name=name,
        kind="training",
        project="team-a",
        clusterId="local",
        namespace="ns",
        queue="team-a",
        createdBy="user@example.com",
    )
    return PolicyRejectedV1(
        source="/berth/tests",
        subject=name,
        actor=Actor(email="user@example.com"),
        data=PolicyRejectedData(
            workload=workload, complianceIssues=[Issue(field="image", details="required")]
        ),
    )


def test_an_emitted_event_is_recorded_with_the_message_that_caused_it() -> None:
    uow = FakeUnitOfWork()
    cause = incoming(_event("w-1"))
    caused, spontaneous = _event("w-2"), _event("w-3")

    uow.emit(caused, cause=cause)
    uow.emit(spontaneous)

    assert uow.events == [caused, spontaneous]
    assert uow.cause_of(caused) is cause
    assert uow.cause_of(spontaneous) is None
    assert uow.events_of(PolicyRejectedV1) == [caused, spontaneous]
    assert cause.msg.subject == "policy.rejected.v1.w-1"


async def test_a_unit_commits_and_runs_its_after_commit_callbacks() -> None:
    table: InMemoryTable[str, Row] = InMemoryTable()
    uow = FakeUnitOfWork(table)
    ran: list[str] = []

    async def callback() -> None:
        ran.append("after commit")

    async with uow() as unit:
        table.put("a", Row("a", 1))
        unit.emit(_event("w-1"))
        unit.after_commit.append(callback)

    assert (uow.commits, uow.rollbacks) == (1, 0)
    assert ran == ["after commit"]
    assert table.get("a") == Row("a", 1)
    assert len(uow.events) == 1


async def test_a_failed_unit_leaves_its_stores_and_its_outbox_as_they_were() -> None:
    table: InMemoryTable[str, Row] = InMemoryTable()
    table.put("a", Row("a", 1))
    uow = FakeUnitOfWork(table)
    uow.emit(_event("before"))

    with pytest.raises(RuntimeError):
        async with uow:
            table.put("a", Row("a", 2))
            assert table.insert_new("b", Row("b", 1))
            uow.emit(_event("w-1"))
            raise RuntimeError("the handler failed")

    assert (uow.commits, uow.rollbacks) == (0, 1)
    assert list(table) == [Row("a", 1)]
    assert [e.subject for e in uow.events] == ["before"]


def test_an_in_memory_table_inserts_new_rows_only_once() -> None:
    table: InMemoryTable[str, Row] = InMemoryTable()

    assert table.insert_new("a", Row("a", 1))
    assert not table.insert_new("a", Row("a", 2))
    assert table.delete("a") == Row("a", 1)
    assert table.delete("a") is None
    assert len(table) == 0


def test_an_event_may_follow_a_trace_context_instead_of_a_message() -> None:
    span = TracerProvider().get_tracer("t").start_span("phase")
    by_span_context = trace_context(span.get_span_context())
    by_context = trace_context(otel_trace.set_span_in_context(span))
    for context in (by_span_context, by_context):
        assert context is not None
        found = otel_trace.get_current_span(context).get_span_context()
        assert found.trace_id == span.get_span_context().trace_id
    assert trace_context(None) is None


def test_a_unit_refuses_an_event_type_its_service_does_not_declare() -> None:
    uow = FakeUnitOfWork(publishes=[PolicyApprovedV1], service="policy")

    with pytest.raises(UndeclaredEventError, match=r"policy may not emit berth\.policy\.rejected"):
        uow.emit(_event("w-1"))

    assert uow.events == []


def test_a_unit_emits_the_event_types_its_service_declares() -> None:
    uow = FakeUnitOfWork(publishes=[PolicyRejectedV1], service="policy")
    uow.emit(_event("w-1"))
    assert [e.type for e in uow.events] == ["berth.policy.rejected"]


def test_a_services_unit_refuses_what_the_service_did_not_declare() -> None:
    declared = Publishes.of("policy", [PolicyApprovedV1])
    unit = UnitOfWork(conn=None, outbox_table=None, publishes=declared)  # type: ignore[arg-type]

    with pytest.raises(UndeclaredEventError, match=r"add it to service\.publishes"):
        unit.emit(_event("w-1"))

    assert unit.rows == []


def test_a_unit_of_work_gives_each_emitted_event_the_trace_headers_of_its_cause() -> None:
    provider = TracerProvider()
    cause = incoming(_event("w-1"))
    cause.span = provider.get_tracer("test").start_span("handle")
    other = provider.get_tracer("test").start_span("other")
    unit = UnitOfWork(conn=None, outbox_table=None)  # type: ignore[arg-type]

    unit.emit(_event("w-2"), cause=cause)
    unit.emit(_event("w-3"), cause=other.get_span_context())
    unit.emit(_event("w-4"), cause=otel_trace.set_span_in_context(other))

    expected = [
        inject(context_of(cause.span)),
        inject(context_of(other)),
        inject(context_of(other)),
    ]
    assert [{k: v for k, v in r["headers"].items() if k != "Nats-Msg-Id"} for r in unit.rows] == (
        expected
    )
    assert all(e["traceparent"] for e in expected)
