"""The policy store port, on PostgreSQL and in memory: the same answers, so that handler unit
tests on the in-memory store say what the service does on the real one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.contracts.policy import PolicyDocument, PolicyMeta
from berth.policy.store import Evaluation, PolicyStore, SqlPolicyStore
from berth.policy.tables import evaluations
from berth.shared.db import create_engine
from berth.shared.migrations import upgrade
from tests.conftest import new_database
from tests.unit.policy.policy_fakes import InMemoryPolicyStore

Scenario = Callable[[PolicyStore], Awaitable[Any]]

TENANT = PolicyMeta(scope="tenant")
CLUSTER = PolicyMeta(scope="cluster", clusterId="local")
RESEARCH = PolicyMeta(scope="department", departmentId="research", clusterId="local")
PHYSICS = PolicyMeta(scope="department", departmentId="physics", clusterId="local")
TEAM_A = PolicyMeta(scope="project", projectId="team-a", departmentId="research", clusterId="local")
LAB = PolicyMeta(scope="project", projectId="lab", departmentId="physics", clusterId="local")
ALL = [TENANT, CLUSTER, RESEARCH, PHYSICS, TEAM_A, LAB]


class Backend:
    """One store implementation: runs a scenario in one transaction, reads what was recorded."""

    def __init__(
        self,
        run: Callable[[Scenario], Awaitable[Any]],
        outcome: Callable[[str], Awaitable[str | None]],
    ) -> None:
        self.run = run
        self.outcome = outcome


@pytest.fixture(params=["postgres", "memory"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        memory = InMemoryPolicyStore()

        async def in_memory(scenario: Scenario) -> Any:
            return await scenario(memory)

        async def memory_outcome(workload_id: str) -> str | None:
            row = memory.evaluations.get(workload_id)
            return None if row is None else row.outcome

        yield Backend(in_memory, memory_outcome)
        return
    admin_url: str = request.getfixturevalue("admin_database_url")
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(new_database(admin_url))
        await upgrade("berth.policy", database_url)
        engine = create_engine(database_url)
        stack.push_async_callback(engine.dispose)
        yield Backend(*_postgres(engine))


def _postgres(
    engine: AsyncEngine,
) -> tuple[Callable[[Scenario], Awaitable[Any]], Callable[[str], Awaitable[str | None]]]:
    async def in_postgres(scenario: Scenario) -> Any:
        async with engine.begin() as conn:
            return await scenario(SqlPolicyStore(conn))

    async def sql_outcome(workload_id: str) -> str | None:
        async with engine.connect() as conn:
            query = select(evaluations.c.outcome).where(evaluations.c.workload_id == workload_id)
            return await conn.scalar(query)

    return in_postgres, sql_outcome


async def _save_all(store: PolicyStore) -> list[int]:
    doc = PolicyDocument.model_validate({"defaults": {"backoffLimit": 2}})
    return [await store.save("training", meta, doc, "admin@example.com") for meta in ALL]


def _names(rows: list[Any]) -> list[str]:
    return sorted(f"{r.scope} {r.scope_id}".strip() for r in rows)


async def test_saved_policies_are_loaded_and_read_by_branch(backend: Backend) -> None:
    versions = await backend.run(_save_all)
    assert versions == sorted(versions) and len(set(versions)) == len(versions)

    async def read(store: PolicyStore) -> Any:
        row = await store.load("training", TEAM_A.ref)
        missing = await store.load("inference", TEAM_A.ref)
        branch = await store.rows_for(
            [("training", "tenant", ""), ("training", "project", "team-a"), ("x", "y", "z")]
        )
        return row, missing, branch

    row, missing, branch = await backend.run(read)
    assert row is not None and missing is None
    assert (row.department_id, row.cluster_id, row.updated_by) == (
        "research",
        "local",
        "admin@example.com",
    )
    assert row.document["defaults"] == {"backoffLimit": 2}
    assert _names(branch) == ["project team-a", "tenant"]


async def test_the_list_holds_every_policy_of_a_type_or_of_a_kind_of_scope(
    backend: Backend,
) -> None:
    await backend.run(_save_all)

    async def read(store: PolicyStore) -> Any:
        doc = PolicyDocument.model_validate({"defaults": {"backoffLimit": 1}})
        await store.save("inference", LAB, doc, "admin@example.com")
        return (
            await store.listed(None, None),
            await store.listed("training", "project"),
            await store.listed("inference", None),
        )

    every, projects, inference = await backend.run(read)
    assert len(every) == len(ALL) + 1
    assert _names(projects) == ["project lab", "project team-a"]
    assert [(r.policy_type, r.scope_id) for r in inference] == [("inference", "lab")]


async def test_related_policies_are_the_scopes_above_and_every_scope_below(
    backend: Backend,
) -> None:
    await backend.run(_save_all)

    async def related(store: PolicyStore) -> dict[str, list[str]]:
        return {
            str(meta.ref): _names(await store.related("training", meta))
            for meta in (TENANT, CLUSTER, RESEARCH, TEAM_A)
        }

    assert await backend.run(related) == {
        "tenant": [
            "cluster local",
            "department physics",
            "department research",
            "project lab",
            "project team-a",
            "tenant",
        ],
        "cluster local": [
            "cluster local",
            "department physics",
            "department research",
            "project lab",
            "project team-a",
            "tenant",
        ],
        "department research": [
            "cluster local",
            "department research",
            "project team-a",
            "tenant",
        ],
        "project team-a": [
            "cluster local",
            "department research",
            "project team-a",
            "tenant",
        ],
    }


async def test_a_removal_has_a_version_of_its_own_and_a_second_one_finds_nothing(
    backend: Backend,
) -> None:
    saved = await backend.run(_save_all)

    async def remove(store: PolicyStore) -> Any:
        first = await store.remove("training", LAB.ref)
        second = await store.remove("training", LAB.ref)
        return first, second, await store.load("training", LAB.ref)

    first, second, row = await backend.run(remove)
    assert first is not None and first > max(saved)
    assert second is None and row is None


async def test_an_upsert_replaces_the_policy_of_a_scope(backend: Backend) -> None:
    async def twice(store: PolicyStore) -> Any:
        for limit in (1, 2):
            doc = PolicyDocument.model_validate({"defaults": {"backoffLimit": limit}})
            await store.save("training", RESEARCH, doc, f"admin{limit}@example.com")
        return await store.rows_for([("training", "department", "research")])

    (row,) = await backend.run(twice)
    assert row.document["defaults"] == {"backoffLimit": 2}
    assert row.updated_by == "admin2@example.com"


async def test_an_evaluation_keeps_its_first_recorded_outcome(backend: Backend) -> None:
    first = Evaluation("w-1", "approved", {"image": "a"}, [])
    again = Evaluation("w-1", "rejected", {"image": "a"}, [{"field": "image", "details": "no"}])

    async def record(store: PolicyStore) -> None:
        await store.record([first])
        await store.record([again])
        await store.record([])

    await backend.run(record)
    assert await backend.outcome("w-1") == "approved"
    assert await backend.outcome("w-2") is None
