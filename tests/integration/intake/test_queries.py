"""Intake's workload list against PostgreSQL: every project or one, filters, and paging; and
which live workloads use a catalog asset."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

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


def workload(
    wid: str,
    project: str,
    name: str,
    kind: str,
    status: str,
    cluster: str | None,
    submitted_at: datetime,
) -> dict[str, Any]:
    """A row of intake.workloads, as much of it as the list and its filters read."""
    return {
        "id": wid,
        "project": project,
        "name": name,
        "kind": kind,
        "status": status,
        "cluster_id": cluster,
        "created_by": "a@example.com",
        "submission": {},
        "submitted_at": submitted_at,
    }


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade("berth.intake", database_url)
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(
            insert(workloads),
            [workload(*r, START + timedelta(minutes=i)) for i, r in enumerate(ROWS)],
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


async def add_same_time_rows(engine: AsyncEngine) -> None:
    """Groups of workloads submitted at the very same instant (to the microsecond), so that
    pages of three end inside a group."""
    at = START + timedelta(minutes=2, microseconds=123_457)
    rows = [
        (f"s{g}-{k}", "team-a" if k % 2 else "team-b", "training" if k % 3 else "workspace", g)
        for g in range(4)
        for k in range(5)
    ]
    async with engine.begin() as conn:
        await conn.execute(
            insert(workloads),
            [
                workload(wid, project, wid, kind, "Running", "local", at + timedelta(seconds=group))
                for wid, project, kind, group in rows
            ],
        )


async def by_cursor(engine: AsyncEngine, query: WorkloadQuery) -> tuple[list[str], int]:
    """Every page after the one before's cursor: the ids in order, and how many pages."""
    found: list[str] = []
    pages, after = 0, None
    while True:
        reply = await list_workloads(query.model_copy(update={"after": after}), engine=engine)
        assert reply.error is None
        pages += 1
        found.extend(w.workloadId for w in reply.workloads)
        if reply.nextCursor is None:
            assert reply.nextOffset is None
            return found, pages
        after = reply.nextCursor


@pytest.mark.parametrize(
    "query",
    [
        WorkloadQuery(actor=ADMIN, limit=3),
        WorkloadQuery(actor=ADMIN, limit=2, project="team-a"),
        WorkloadQuery(actor=ADMIN, limit=3, kind=["training"], status=["running", "pending"]),
        WorkloadQuery(actor=BOB, limit=3),
        WorkloadQuery(limit=1),
    ],
)
async def test_cursor_pages_give_every_row_once_in_order(
    engine: AsyncEngine, query: WorkloadQuery
) -> None:
    await add_same_time_rows(engine)
    whole = await list_workloads(query.model_copy(update={"limit": 1000}), engine=engine)
    expected = [w.workloadId for w in whole.workloads]
    assert len(expected) > 2 * (query.limit or 0)
    found, pages = await by_cursor(engine, query)
    assert found == expected
    assert pages == -(-len(expected) // (query.limit or 1))


async def test_a_page_from_an_offset_gives_both_its_next_offset_and_cursor(
    engine: AsyncEngine,
) -> None:
    await add_same_time_rows(engine)
    first = await list_workloads(WorkloadQuery(limit=4, actor=ADMIN), engine=engine)
    assert first.nextOffset == 4 and first.nextCursor is not None
    by_offset = await list_workloads(WorkloadQuery(limit=4, offset=4, actor=ADMIN), engine=engine)
    after = await list_workloads(
        WorkloadQuery(limit=4, after=first.nextCursor, actor=ADMIN), engine=engine
    )
    assert after.workloads == by_offset.workloads
    assert after.nextCursor == by_offset.nextCursor and after.nextOffset is None


def encode_text(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("after", "reason"),
    [
        ("!!not base64!!", "not base64url-encoded text"),
        (encode_text("2026-01-01T00:00:00+00:00"), "no workload id in it"),
        (encode_text("yesterday|w1"), "'yesterday' is not an ISO 8601 timestamp"),
        (encode_text("2026-01-01T00:00:00|w1"), "has no timezone"),
    ],
)
async def test_a_cursor_not_given_by_the_list_is_refused_with_the_reason(
    engine: AsyncEngine, after: str, reason: str
) -> None:
    reply = await list_workloads(WorkloadQuery(after=after, actor=ADMIN), engine=engine)
    assert reply.workloads == [] and reply.nextCursor is None
    assert reply.error is not None
    assert reply.error.startswith(f"after {after!r} is not a cursor of this list: ")
    assert reason in reply.error


async def test_a_cursor_and_an_offset_together_are_refused(engine: AsyncEngine) -> None:
    first = await list_workloads(WorkloadQuery(limit=2, actor=ADMIN), engine=engine)
    assert first.nextCursor is not None
    reply = await list_workloads(
        WorkloadQuery(limit=2, offset=2, after=first.nextCursor, actor=ADMIN), engine=engine
    )
    assert reply.workloads == [] and reply.error is not None
    assert "offset 2" in reply.error and "not both" in reply.error
