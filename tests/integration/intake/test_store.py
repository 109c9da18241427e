"""Intake's store port, on PostgreSQL and in memory: the same answers, so that handler unit tests
on the in-memory store say what the service does on the real one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.contracts.access import AccessRule
from berth.contracts.catalog import AssetRef, AssetView
from berth.contracts.events import ClusterConfig, ClusterRecord
from berth.intake.store import CatalogEntry, IntakeStore, PhaseChange, SqlIntakeStore, WorkloadRow
from berth.intake.tables import access_rules, phase_history, workloads
from berth.shared.access import SqlAccessRules
from berth.shared.db import create_engine
from berth.shared.migrations import upgrade
from tests.conftest import new_database
from tests.integration.access import rule
from tests.unit.intake.intake_fakes import InMemoryIntakeStore

Scenario = Callable[[IntakeStore], Awaitable[Any]]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


Rules = Callable[[Sequence[AccessRule], Sequence[AccessRule]], Awaitable[None]]


class Backend:
    """One store implementation: runs a scenario in one transaction, reads a workload's phase,
    records access rules created and deleted (as its copy's subscriptions do)."""

    def __init__(
        self,
        run: Callable[[Scenario], Awaitable[Any]],
        phase: Callable[[str], Awaitable[tuple[str, str | None] | None]],
        rules: Rules,
    ) -> None:
        self.run = run
        self.phase = phase
        self.rules = rules


@pytest.fixture(params=["postgres", "memory"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        memory = InMemoryIntakeStore(rules=[])

        async def in_memory(scenario: Scenario) -> Any:
            return await scenario(memory)

        async def memory_phase(workload_id: str) -> tuple[str, str | None] | None:
            w = memory.workload(workload_id)
            return None if w is None else (w.status, w.phase)

        async def memory_rules(
            created: Sequence[AccessRule], deleted: Sequence[AccessRule]
        ) -> None:
            await memory.rules.record_created(created)
            await memory.rules.record_deleted(deleted)

        yield Backend(in_memory, memory_phase, memory_rules)
        return
    admin_url: str = request.getfixturevalue("admin_database_url")
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(new_database(admin_url))
        await upgrade("berth.intake", database_url)
        db = create_engine(database_url)
        stack.push_async_callback(db.dispose)
        yield Backend(*_postgres(db))


def _postgres(
    db: AsyncEngine,
) -> tuple[
    Callable[[Scenario], Awaitable[Any]],
    Callable[[str], Awaitable[tuple[str, str | None] | None]],
    Rules,
]:
    async def in_postgres(scenario: Scenario) -> Any:
        async with db.begin() as conn:
            return await scenario(SqlIntakeStore(conn))

    async def sql_phase(workload_id: str) -> tuple[str, str | None] | None:
        async with db.connect() as conn:
            row = (
                await conn.execute(
                    select(workloads.c.status, workloads.c.phase).where(
                        workloads.c.id == workload_id
                    )
                )
            ).first()
        return None if row is None else (row.status, row.phase)

    async def sql_rules(created: Sequence[AccessRule], deleted: Sequence[AccessRule]) -> None:
        async with db.begin() as conn:
            await SqlAccessRules(conn, access_rules).record_created(created)
            await SqlAccessRules(conn, access_rules).record_deleted(deleted)

    return in_postgres, sql_phase, sql_rules


def row(
    workload_id: str,
    name: str,
    *,
    status: str = "received",
    gpus: int = 1,
    digest: str | None = "h",
) -> WorkloadRow:
    return WorkloadRow(
        id=workload_id,
        name=name,
        project="team-a",
        kind="training",
        cluster_id="local",
        created_by="user@example.com",
        status=status,
        trace_id=None,
        submission={
            "kind": "training",
            "name": name,
            "projectId": "team-a",
            "spec": {"image": "pytorch/pytorch", "compute": {"gpuDevicesRequest": gpus}},
        },
        issues=[],
        content_hash=digest,
    )


async def taken(store: IntakeStore, names: str) -> set[tuple[str, str]]:
    """Which of the names (one letter each) a live workload of team-a holds."""
    return (await store.judging([("team-a", n) for n in names], [], [])).taken


def project(quota_gpus: float, *, name: str = "team-a") -> AssetView:
    return AssetView(
        id=f"project-{name}",
        kind="project",
        name=name,
        spec={
            "clusterId": "local",
            "namespace": f"ns-{name}",
            "quota": [{"nodePool": "a100", "gpu": {"deserved": quota_gpus}}],
        },
    )


async def test_a_workload_keeps_its_first_record_and_a_live_name_is_held_once(
    backend: Backend,
) -> None:
    async def record(store: IntakeStore) -> Any:
        await store.record_workloads([row("w-1", "demo", digest="first")])
        await store.record_workloads([row("w-1", "other", digest="second")])
        await store.record_workloads([row("w-2", "demo")])  # the live name is taken
        await store.record_workloads([row("w-3", "demo", status="rejected")])
        await store.record_workloads([])
        judged = await store.judging(
            [("team-a", "demo"), ("team-a", "other")], ["w-1", "w-2", "w-3", "w-4"], []
        )
        return judged.known, judged.taken

    known, live = await backend.run(record)
    assert known == {"w-1": "first", "w-3": "h"}
    assert live == {("team-a", "demo")}


async def test_approval_and_policy_rejection_update_the_read_model(backend: Backend) -> None:
    async def decide(store: IntakeStore) -> Any:
        await store.record_workloads([row("w-1", "a"), row("w-2", "b"), row("w-3", "c")])
        await store.approve([("w-1", {**row("w-1", "a").submission, "spec": {"image": "x"}})])
        await store.approve([("w-1", {"image": "late"}), ("w-9", {"image": "none"})])
        await store.reject([("w-2", [{"field": "image", "details": "no"}])])
        return await taken(store, "abc"), await store.usage(["team-a"])

    live, used = await backend.run(decide)
    assert live == {("team-a", "a"), ("team-a", "c")}
    # The approved workload counts by its effective spec (no GPUs), w-3 by its submission.
    assert used == {"team-a": 1.0}
    assert await backend.phase("w-1") == ("approved", None)
    assert await backend.phase("w-2") == ("rejected", None)


async def test_phases_move_forward_in_time_and_a_terminal_one_is_final(backend: Backend) -> None:
    def change(wid: str, phase: str, seconds: int) -> PhaseChange:
        return PhaseChange(wid, phase, "", NOW + timedelta(seconds=seconds))

    async def phases(store: IntakeStore) -> Any:
        await store.record_workloads([row("w-1", "a"), row("w-2", "b"), row("w-3", "c")])
        await store.record_phases([change("w-1", "Running", 2), change("w-1", "Pending", 1)])
        await store.record_phases([change("w-2", "Completed", 1)])
        await store.record_phases([change("w-2", "Running", 5)])
        await store.record_phases([change("w-3", "Deleted", 1)])
        await store.record_phases([])
        return await store.usage(["team-a"]), await taken(store, "abc")

    used, live = await backend.run(phases)
    assert used == {"team-a": 1.0}
    assert live == {("team-a", "a"), ("team-a", "b")}
    assert await backend.phase("w-1") == ("Running", "Running")
    assert await backend.phase("w-2") == ("Completed", "Completed")


async def test_changes_of_one_workload_in_one_batch_apply_in_order(backend: Backend) -> None:
    def change(wid: str, phase: str, seconds: int) -> PhaseChange:
        return PhaseChange(wid, phase, "", NOW + timedelta(seconds=seconds))

    async def batch(store: IntakeStore) -> None:
        await store.record_workloads([row("w-1", "a"), row("w-2", "b"), row("w-3", "c")])
        await store.approve([("w-3", {"image": "first"}), ("w-3", {"image": "second"})])
        # A terminal phase stops a later report of the same batch; another workload's reports
        # apply in order each time.
        await store.record_phases(
            [
                change("w-1", "Pending", 1),
                change("w-2", "Pending", 1),
                change("w-1", "Failed", 2),
                change("w-2", "Running", 3),
                change("w-1", "Running", 3),
                change("w-2", "Creating", 2),
            ]
        )

    await backend.run(batch)
    assert await backend.phase("w-1") == ("Failed", "Failed")
    assert await backend.phase("w-2") == ("Running", "Running")
    assert await backend.phase("w-3") == ("approved", None)


async def test_the_catalog_copy_keeps_the_newest_entry_and_deleted_ones_as_tombstones(
    backend: Backend,
) -> None:
    pool = AssetView(id="np-a100", kind="nodepool", name="a100")
    gone = AssetView(id="np-old", kind="nodepool", name="old")

    async def catalog(store: IntakeStore) -> Any:
        await store.record_catalog(
            [
                CatalogEntry(project(4), False, NOW + timedelta(seconds=1)),
                CatalogEntry(pool, False, NOW),
                CatalogEntry(gone, False, NOW),
            ]
        )
        await store.record_catalog(
            [
                CatalogEntry(project(8), False, NOW),  # older: changes nothing
                CatalogEntry(gone, True, NOW + timedelta(seconds=1)),
            ]
        )
        await store.record_catalog([CatalogEntry(gone, False, NOW)])  # late: stays deleted
        projects = await store.projects(["team-a", "team-b"])
        judged = await store.judging([], [], ["team-a", "team-b"])
        return (
            {name: (p.namespace, p.clusterId) for name, p in projects.items()},
            judged.quotas,
            judged.pools,
            [a.name for a in await store.assets([AssetRef(kind="nodepool", name="a100")])],
        )

    projects, quotas, pools, assets = await backend.run(catalog)
    assert projects == {"team-a": ("ns-team-a", "local")}
    assert quotas == {"team-a": 4.0}
    assert pools == {"a100"}
    assert assets == ["a100"]


async def test_the_cluster_registry_keeps_each_clusters_latest_report(backend: Backend) -> None:
    def record(cluster_id: str, seconds: int, mig: str | None) -> ClusterRecord:
        return ClusterRecord(
            clusterId=cluster_id,
            backend="simulated",
            config=ClusterConfig(),
            capabilities={} if mig is None else {"migStrategy": mig},
            reportedAt=NOW + timedelta(seconds=seconds),
        )

    async def clusters(store: IntakeStore) -> Any:
        await store.record_clusters([record("local", 2, "single"), record("edge", 0, None)])
        await store.record_clusters([record("local", 1, "mixed")])  # older: changes nothing
        await store.record_clusters([])
        return (await store.judging([], [], [])).registry

    registry = await backend.run(clusters)
    assert set(registry) == {"local", "edge"}
    assert registry["edge"] is None
    assert registry["local"] is not None and registry["local"].migStrategy == "single"


async def test_action_targets_are_received_workloads_by_id_and_by_name_live_first(
    backend: Backend,
) -> None:
    reference = {"workloadId": "w-1", "namespace": "ns-team-a", "queue": "team-a"}

    async def earlier(store: IntakeStore) -> Any:
        await store.record_workloads([replace(row("w-1", "demo"), ref=reference)])
        await store.record_phases([PhaseChange("w-1", "Deleted", "", NOW)])

    async def later(store: IntakeStore) -> Any:
        await store.record_workloads(
            [
                row("w-2", "demo"),
                # Rejected by intake: never a workload, so never a target.
                replace(row("w-3", "bad", status="rejected"), cluster_id=None),
            ]
        )
        await store.record_phases([PhaseChange("w-2", "Running", "", NOW)])
        return await store.action_targets(
            ["w-1", "w-3", "w-9"], [("team-a", "demo"), ("team-a", "bad")]
        )

    await backend.run(earlier)
    found = await backend.run(later)
    assert [(t.workload_id, t.phase, t.live, t.ref) for t in found] == [
        ("w-2", "Running", True, None),
        ("w-1", "Deleted", False, reference),
    ]
    assert (found[0].created_by, found[0].cluster_id, found[0].kind) == (
        "user@example.com",
        "local",
        "training",
    )
    assert await backend.run(lambda store: store.action_targets([], [])) == []


async def test_judging_a_batch_reads_each_part_of_what_intake_knows(backend: Backend) -> None:
    capable = ClusterRecord(
        clusterId="local",
        backend="simulated",
        config=ClusterConfig(),
        capabilities={"migStrategy": "single"},
        reportedAt=NOW,
    )
    bare = capable.model_copy(update={"clusterId": "edge", "capabilities": {}})
    reader = rule("viewer@example.com", "Viewer")
    submitter = rule("user@example.com", "L1 researcher", ("project", "team-a"))
    revoked = rule("gone@example.com", "L1 researcher")

    async def judge(store: IntakeStore) -> Any:
        empty = await store.judging([], [], [])
        await store.record_workloads(
            [
                row("w-1", "demo", digest="first"),
                row("w-2", "held", status="rejected"),
                row("w-3", "other", digest=None),
            ]
        )
        await store.record_catalog(
            [
                CatalogEntry(project(4), False, NOW),
                CatalogEntry(project(0, name="team-b"), False, NOW),
                CatalogEntry(AssetView(id="np-a", kind="nodepool", name="a100"), False, NOW),
                CatalogEntry(AssetView(id="np-x", kind="nodepool", name="old"), True, NOW),
            ]
        )
        await store.record_clusters([capable, bare])
        names = [("team-a", "demo"), ("team-a", "held"), ("team-a", "new"), ("team-a", "demo")]
        ids = ["w-1", "w-2", "w-3", "w-9", "w-1"]
        projects = ["team-a", "team-b", "team-c", "team-a"]
        return empty, await store.judging(names, ids, projects)

    await backend.rules([reader, submitter, revoked], [])
    await backend.rules([], [revoked])
    empty, judging = await backend.run(judge)
    assert (empty.taken, empty.known, empty.quotas) == (set(), {}, {})
    assert (empty.pools, empty.registry) == (set(), {})
    assert empty.rules == judging.rules
    assert sorted(r.id for r in judging.rules) == sorted([reader.id, submitter.id])
    assert judging.known == {"w-1": "first", "w-2": "h", "w-3": None}
    assert judging.taken == {("team-a", "demo")}
    assert judging.pools == {"a100"}
    assert set(judging.registry) == {"local", "edge"} and judging.registry["edge"] is None
    assert judging.quotas == {"team-a": 4.0, "team-b": 0.0}


# --- phase reports of a batch: one statement where that ends as one statement per report does --


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade("berth.intake", database_url)
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def report(workload_id: str, phase: str, seconds: int) -> PhaseChange:
    # Message and pod counts name the report, so that a row shows which report it holds.
    at = NOW + timedelta(seconds=seconds)
    return PhaseChange(workload_id, phase, f"{phase} at {seconds}", at, seconds, 10 + seconds)


@dataclass(frozen=True)
class Applied:
    """A batch of reports applied to one copy of its workloads in one call, and to another
    copy one report per call (each then its own statement: the order they apply in)."""

    updates: int  # statements that updated workloads, for the batch in one call
    batched: dict[str, tuple[Any, ...]]  # each workload's phase columns, by workload
    one_by_one: dict[str, tuple[Any, ...]]
    history: dict[str, int]  # phase_history rows of each workload, batched copy


async def apply(
    db: AsyncEngine, batch: list[PhaseChange], before: tuple[PhaseChange, ...] = ()
) -> Applied:
    """``before`` (one report per call) then ``batch`` on both copies."""
    batched, one_by_one = "batched/", "one-by-one/"

    def on(copy: str, changes: Sequence[PhaseChange]) -> list[PhaseChange]:
        return [replace(c, workload_id=copy + c.workload_id) for c in changes]

    named = sorted({c.workload_id for c in (*before, *batch)})
    async with db.begin() as conn:
        store = SqlIntakeStore(conn)
        await store.record_workloads(
            [row(p + w, p + w) for p in (batched, one_by_one) for w in named]
        )
        for c in before:
            await store.record_phases(on(batched, [c]))
            await store.record_phases(on(one_by_one, [c]))
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.sync_engine, "before_cursor_execute", count)
    try:
        async with db.begin() as conn:
            await SqlIntakeStore(conn).record_phases(on(batched, batch))
    finally:
        event.remove(db.sync_engine, "before_cursor_execute", count)
    for c in batch:
        async with db.begin() as conn:
            await SqlIntakeStore(conn).record_phases(on(one_by_one, [c]))
    async with db.connect() as conn:
        rows = await conn.execute(
            select(
                workloads.c.id,
                workloads.c.status,
                workloads.c.phase,
                workloads.c.phase_message,
                workloads.c.phase_at,
                workloads.c.running_pods,
                workloads.c.requested_pods,
            )
        )
        history = await conn.execute(
            select(phase_history.c.workload_id, func.count()).group_by(phase_history.c.workload_id)
        )
    state: dict[str, dict[str, tuple[Any, ...]]] = {batched: {}, one_by_one: {}}
    for r in rows:
        copy, _, workload_id = r.id.partition("/")
        state[copy + "/"][workload_id] = tuple(r)[1:]
    return Applied(
        updates=sum(s.lstrip().startswith("UPDATE intake.workloads") for s in statements),
        batched=state[batched],
        one_by_one=state[one_by_one],
        history={wid.removeprefix(batched): n for wid, n in history if wid.startswith(batched)},
    )


def phase_of(applied: Applied) -> dict[str, tuple[str, str]]:
    """Each workload's phase and the report it came from, as the batch left them."""
    return {w: (state[1], state[2]) for w, state in applied.batched.items()}


async def test_a_batch_of_reports_in_order_is_one_update_ending_as_one_by_one(
    db: AsyncEngine,
) -> None:
    applied = await apply(
        db,
        [
            report("new", "Creating", 1),
            report("same-time", "Pending", 5),
            report("ahead", "Pending", 2),
            report("stale", "Creating", 1),
            report("finished", "Running", 2),
            report("fails", "Running", 1),
            report("new", "Pending", 2),
            report("same-time", "Running", 5),
            report("ahead", "Initializing", 3),
            report("stale", "Pending", 2),
            report("finished", "Degraded", 3),
            report("fails", "Failed", 2),
            report("new", "Initializing", 3),
            report("ahead", "Degraded", 4),
            report("new", "Running", 4),
        ],
        before=(
            report("ahead", "Running", 3),
            report("stale", "Running", 9),
            report("finished", "Completed", 1),
        ),
    )

    assert applied.updates == 1  # one per report of a workload: 4
    assert applied.batched == applied.one_by_one
    # The history keeps every report, whatever the current phase made of it.
    assert applied.history == {
        "new": 4,
        "same-time": 2,
        "ahead": 3 + 1,
        "stale": 2 + 1,
        "finished": 2 + 1,
        "fails": 2,
    }
    assert phase_of(applied) == {
        "new": ("Running", "Running at 4"),
        "same-time": ("Running", "Running at 5"),
        "ahead": ("Degraded", "Degraded at 4"),
        "stale": ("Running", "Running at 9"),
        "finished": ("Completed", "Completed at 1"),
        "fails": ("Failed", "Failed at 2"),
    }


async def test_reports_out_of_order_or_after_a_terminal_one_apply_one_by_one(
    db: AsyncEngine,
) -> None:
    applied = await apply(
        db,
        [
            report("late", "Running", 2),
            report("late", "Failed", 1),  # older than Running: it changes nothing
            report("final", "Completed", 1),
            report("final", "Running", 2),
            report("deleted", "Deleted", 1),
            report("deleted", "Running", 1),
            report("back", "Running", 3),
            report("back", "Pending", 1),
            report("back", "Failed", 4),
        ],
    )

    assert applied.batched == applied.one_by_one
    assert phase_of(applied) == {
        "late": ("Running", "Running at 2"),
        "final": ("Completed", "Completed at 1"),
        "deleted": ("Deleted", "Deleted at 1"),
        "back": ("Failed", "Failed at 4"),
    }
    # Only Running then Failed at 4 matters for "back"; the others' two reports each do.
    assert applied.updates == 2


async def test_a_mixed_batch_keeps_the_rounds_only_its_reports_out_of_order_need(
    db: AsyncEngine,
) -> None:
    in_order = ("Creating", "Pending", "Initializing", "Running", "Degraded")
    applied = await apply(
        db,
        [
            *(report("in-order", phase, n) for n, phase in enumerate(in_order)),
            report("backwards", "Running", 5),
            report("backwards", "Pending", 4),
            report("backwards", "Creating", 3),
            report("stopped", "Completed", 1),
            report("stopped", "Running", 2),
            report("stopped", "Failed", 3),
        ],
    )

    assert applied.batched == applied.one_by_one
    assert phase_of(applied) == {
        "in-order": ("Degraded", "Degraded at 4"),
        "backwards": ("Running", "Running at 5"),
        "stopped": ("Completed", "Completed at 1"),
    }
    # Three rounds for "backwards", whose every report matters; five before.
    assert applied.updates == 3
