"""Intake's answer to ownership about the workloads some action requests name: by id and by
name, each with its reference as accepted and its current phase, over the in-memory store (the
store's SQL gives the same rows: tests/integration/intake/test_store.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from berth.contracts.catalog import AssetView
from berth.contracts.events import WorkloadRef
from berth.contracts.queries import ActionTargetsRequest, WorkloadName
from berth.intake.queries import action_targets
from berth.intake.store import CatalogEntry, PhaseChange, WorkloadRow
from tests.unit.intake.intake_fakes import InMemoryIntakeStore

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def reference(workload_id: str, name: str) -> WorkloadRef:
    return WorkloadRef(
        workloadId=workload_id,
        name=name,
        kind="training",
        project="team-a",
        department="research",
        clusterId="local",
        namespace="berth-team-a",
        queue="team-a",
        createdBy="alice@example.com",
        overQuota=False,
    )


def received(workload_id: str, name: str, *, ref: WorkloadRef | None) -> WorkloadRow:
    return WorkloadRow(
        id=workload_id,
        name=name,
        project="team-a",
        kind="training",
        cluster_id="local",
        created_by="alice@example.com",
        status="received",
        trace_id=None,
        submission={},
        issues=[],
        content_hash="h",
        ref=None if ref is None else ref.model_dump(mode="json"),
    )


def rejected(workload_id: str, name: str) -> WorkloadRow:
    return WorkloadRow(
        id=workload_id,
        name=name,
        project="team-a",
        kind="training",
        cluster_id=None,
        created_by="alice@example.com",
        status="rejected",
        trace_id=None,
        submission={},
        issues=[{"field": "spec", "details": "bad"}],
        content_hash="h",
    )


def ask(ids: list[str], names: list[str] = []) -> ActionTargetsRequest:  # noqa: B006
    return ActionTargetsRequest(
        workloadIds=ids, names=[WorkloadName(project="team-a", name=n) for n in names]
    )


async def test_a_workload_comes_with_its_reference_as_accepted_and_its_current_phase() -> None:
    store = InMemoryIntakeStore()
    ref = reference("w-1", "demo")
    await store.record_workloads([received("w-1", "demo", ref=ref), rejected("w-2", "bad")])
    await store.record_phases([PhaseChange("w-1", "Running", "", NOW)])
    reply = await action_targets(ask(["w-1", "w-2", "w-9"], ["bad"]), read=store.read)
    assert list(reply.byId) == ["w-1"]
    assert reply.byId["w-1"].workload == ref
    assert reply.byId["w-1"].phase == "Running"
    # A submission intake rejected was never a workload: not found by id nor by name.
    assert reply.byName == []


async def test_a_name_stands_for_its_live_workload_else_the_latest() -> None:
    store = InMemoryIntakeStore()
    await store.record_workloads([received("w-1", "demo", ref=reference("w-1", "demo"))])
    await store.record_phases([PhaseChange("w-1", "Deleted", "", NOW)])
    reply = await action_targets(ask([], ["demo"]), read=store.read)
    assert [t.workload.workloadId for t in reply.byName] == ["w-1"]
    await store.record_workloads([received("w-2", "demo", ref=reference("w-2", "demo"))])
    reply = await action_targets(ask([], ["demo", "other"]), read=store.read)
    assert [t.workload.workloadId for t in reply.byName] == ["w-2"]
    assert reply.byId == {}


async def test_a_workload_received_before_references_were_kept_is_described_from_its_project() -> (
    None
):
    store = InMemoryIntakeStore()
    await store.record_catalog(
        [
            CatalogEntry(
                AssetView(
                    id="project-team-a",
                    kind="project",
                    name="team-a",
                    spec={"clusterId": "local", "department": "research"},
                ),
                deleted=False,
                changed_at=NOW,
            )
        ]
    )
    await store.record_workloads([received("w-1", "demo", ref=None)])
    reply = await action_targets(ask(["w-1"]), read=store.read)
    assert reply.byId["w-1"].workload == reference("w-1", "demo").model_copy(
        update={"overQuota": None}
    )
    assert reply.byId["w-1"].phase is None


async def test_without_its_reference_or_its_project_a_workload_is_not_described() -> None:
    store = InMemoryIntakeStore()
    await store.record_workloads([received("w-1", "demo", ref=None)])
    assert (await action_targets(ask(["w-1"]), read=store.read)).byId == {}
