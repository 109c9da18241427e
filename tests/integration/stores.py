"""One store scenario run against a service's PostgreSQL store and its in-memory fake, so the
handler unit tests on the fake say what the service does on the real database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from berth.shared.db import create_engine
from berth.shared.migrations import upgrade
from tests.conftest import new_database

Run = Callable[[Callable[[Any], Awaitable[Any]]], Awaitable[Any]]


@contextlib.asynccontextmanager
async def store_runner(
    request: pytest.FixtureRequest,
    migrations: str,
    sql_store: Callable[[AsyncConnection], Any],
    memory_store: Callable[[], Any],
) -> AsyncIterator[Run]:
    """Runs a scenario against one implementation (``request.param``: postgres or memory); on
    PostgreSQL each scenario is one transaction of a freshly migrated database."""
    if request.param == "memory":
        memory = memory_store()

        async def in_memory(scenario: Callable[[Any], Awaitable[Any]]) -> Any:
            return await scenario(memory)

        yield in_memory
        return
    admin_url: str = request.getfixturevalue("admin_database_url")
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(new_database(admin_url))
        await upgrade(migrations, database_url)
        engine = create_engine(database_url)
        stack.push_async_callback(engine.dispose)

        async def in_postgres(scenario: Callable[[Any], Awaitable[Any]]) -> Any:
            async with engine.begin() as conn:
                return await scenario(sql_store(conn))

        yield in_postgres
