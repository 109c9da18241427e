"""Intake's workload list against PostgreSQL: every project or one, filters, and paging; and
which live workloads use a catalog asset."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.contracts.envelope import Actor
from berth.contracts.queries import AssetUsersRequest, WorkloadQuery
from berth.intake.queries import get_workload, list_workloads, workloads_using_assets
from berth.intake.tables import (
    access_rules,
    catalog_entries,
    clusters,
    workload_assets,
    workloads,
)
from berth.shared.access import SqlAccessRules
from berth.shared.db import create_engine
from berth.shared.migrations import upgrade
from tests.integration.access import rule

ADMIN = Actor(email="admin@example.com")
BOB = Actor(email="bob@example.com")

START = datetime(2026, 1, 1, tzinfo=UTC)
ROWS = [
    # id, project, name, kind, status, cluster
    ("w1", "team-a", "one", "training", "Running", "local"),
    ("w2", "team-a", "two", "workspace", "Pending", "local"),
    ("w3", "team-b", "three", "training", "rejected", None),
    ("w4", "team-b", "four", "distributed", "Completed", "other"),
    ("w5", "team-a", "one", "training", "rejected", None),
]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade("berth.intake", database_url)
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(
            insert(workloads),
            [
                {
                    "id": wid,
                    "project": project,
                    "name": name,
                    "kind": kind,
                    "status": status,
                    "cluster_id": cluster,
                    "created_by": "a@example.com",
                    "submission": {},
                    "submitted_at": START + timedelta(minutes=i),
                }
                for i, (wid, project, name, kind, status, cluster) in enumerate(ROWS)
            ],
        )
        await conn.execute(
            insert(catalog_entries),
            [
                {
                    "id": f"project-{name}",
                    "kind": "project",
                    "name": name,
                    "asset": {
                        "id": f"project-{name}",
                        "kind": "project",
                        "name": name,
                        "spec": {"department": "research", "clusterId": "local"},
                    },
                    "changed_at": START,
                }
                for name in ("team-a", "team-b")
            ],
        )
        await SqlAccessRules(conn, access_rules).record_created(
            [rule(ADMIN.email, "Viewer"), rule(BOB.email, "L1 researcher", ("project", "team-b"))]
        )
    yield engine
    await engine.dispose()


async def ids(engine: AsyncEngine, **query: object) -> list[str]:
    reply = await list_workloads(
        WorkloadQuery(actor=ADMIN, **query),  # type: ignore[arg-type]
        engine=engine,
    )
    return [w.workloadId for w in reply.workloads]


async def test_without_a_project_every_project_is_listed_newest_first(engine: AsyncEngine) -> None:
    assert await ids(engine) == ["w5", "w4", "w3", "w2", "w1"]
    assert await ids(engine, project="team-b") == ["w4", "w3"]


async def test_filters_combine(engine: AsyncEngine) -> None:
    assert await ids(engine, status=["running", "pending"]) == ["w2", "w1"]
    assert await ids(engine, kind=["training"], project="team-a") == ["w5", "w1"]
    assert await ids(engine, clusterId="other") == ["w4"]


async def test_pages_follow_each_other(engine: AsyncEngine) -> None:
    first = await list_workloads(WorkloadQuery(limit=2, actor=ADMIN), engine=engine)
    assert [w.workloadId for w in first.workloads] == ["w5", "w4"] and first.nextOffset == 2
    last = await list_workloads(WorkloadQuery(limit=2, offset=4, actor=ADMIN), engine=engine)
    assert [w.workloadId for w in last.workloads] == ["w1"] and last.nextOffset is None


async def test_a_live_workload_wins_over_a_rejected_one_of_the_same_name(
    engine: AsyncEngine,
) -> None:
    reply = await get_workload(
        WorkloadQuery(project="team-a", name="one", actor=ADMIN), engine=engine
    )
    assert reply.workload is not None and reply.workload.workloadId == "w1"


async def test_a_list_shows_only_the_projects_the_caller_may_read(engine: AsyncEngine) -> None:
    reply = await list_workloads(WorkloadQuery(actor=BOB), engine=engine)
    assert [w.workloadId for w in reply.workloads] == ["w4", "w3"]
    reply = await list_workloads(WorkloadQuery(actor=BOB, project="team-a"), engine=engine)
    assert reply.workloads == []
    stranger = Actor(email="nobody@example.com")
    assert (await list_workloads(WorkloadQuery(actor=stranger), engine=engine)).workloads == []
    # Without an actor the query is a service's or the operator's (the runtime gives every UI
    # query the actor its token proves): all of them.
    operator = await list_workloads(WorkloadQuery(), engine=engine)
    assert len(operator.workloads) == len(ROWS)


async def test_describing_a_workload_the_caller_may_not_read_is_refused(
    engine: AsyncEngine,
) -> None:
    reply = await get_workload(
        WorkloadQuery(project="team-a", name="one", actor=BOB), engine=engine
    )
    assert reply.workload is None
    assert reply.error == (
        "forbidden: bob@example.com may not read workloads in project team-a "
        "(no access rule grants workloads.read there)"
    )
    mine = await get_workload(
        WorkloadQuery(project="team-b", name="four", actor=BOB), engine=engine
    )
    assert mine.workload is not None


async def test_a_disconnected_clusters_unfinished_workloads_read_unknown(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(clusters),
            [
                {"cluster_id": c, "backend": "kubernetes", "config": {}, "reported_at": START}
                | {"connected": connected}
                for c, connected in (("local", False), ("other", True))
            ],
        )
        for wid, phase in (("w1", "Running"), ("w2", "Pending"), ("w4", "Completed")):
            await conn.execute(update(workloads).where(workloads.c.id == wid).values(phase=phase))
    listed = {
        w.workloadId: w
        for w in (await list_workloads(WorkloadQuery(actor=ADMIN), engine=engine)).workloads
    }
    assert (listed["w1"].status, listed["w1"].phase) == ("Unknown", "Unknown")
    assert "cluster local is disconnected" in listed["w1"].phaseMessage
    assert "last known phase: Running" in listed["w1"].phaseMessage
    assert listed["w2"].status == "Unknown"
    # Finished, or on a connected cluster: as stored.
    assert listed["w4"].status == "Completed"
    one = await get_workload(WorkloadQuery(workloadId="w1", actor=ADMIN), engine=engine)
    assert one.workload is not None and one.workload.phase == "Unknown"


async def test_the_live_workloads_using_an_asset_are_named(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(workload_assets),
            [
                {"asset_id": asset, "workload_id": wid}
                for asset, wid in [
                    ("environment-a", "w1"),
                    ("environment-a", "w2"),
                    ("environment-a", "w3"),  # rejected: it holds nothing
                    ("environment-a", "w4"),  # completed, not deleted: still holds it
                    ("compute-b", "w5"),  # rejected
                    ("compute-c", "w2"),
                ]
            ],
        )
        await conn.execute(update(workloads).where(workloads.c.id == "w2").values(status="Deleted"))
    reply = await workloads_using_assets(
        AssetUsersRequest(assetIds=["environment-a", "compute-b", "compute-c", "other"]),
        engine=engine,
    )
    assert reply.users == {"environment-a": ["team-a/one", "team-b/four"]}


async def test_a_view_shows_the_effective_spec_once_approved_else_the_submission(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(workloads).where(workloads.c.id.in_(["w1", "w2"])).values(submission={"a": 1})
        )
        await conn.execute(
            update(workloads).where(workloads.c.id == "w1").values(effective_spec={"a": 2})
        )
    listed = await list_workloads(WorkloadQuery(project="team-a"), engine=engine)
    specs = {w.workloadId: w.spec for w in listed.workloads}
    assert specs["w1"] == {"a": 2} and specs["w2"] == {"a": 1}
    one = await get_workload(WorkloadQuery(workloadId="w2"), engine=engine)
    assert one.workload is not None and one.workload.spec == {"a": 1}
