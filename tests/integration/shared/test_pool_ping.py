"""Pooled connections are pinged only after being idle: a connection the database dropped
meanwhile is replaced before use, and one in constant use costs no extra round trips."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from berth.shared.db import create_engine, ping_after_idle


def _count_pings(engine: AsyncEngine) -> list[int]:
    dialect = engine.sync_engine.dialect
    ping = dialect.do_ping
    pings = [0]

    def counted(dbapi_connection: Any) -> bool:
        pings[0] += 1
        return ping(dbapi_connection)

    dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        return int((await conn.execute(text("select pg_backend_pid()"))).scalar_one())


async def test_a_connection_in_constant_use_is_not_pinged(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1)
    pings = _count_pings(engine)
    try:
        first = await _backend_pid(engine)
        for _ in range(20):
            assert await _backend_pid(engine) == first
        assert pings[0] == 0
    finally:
        await engine.dispose()


async def test_an_idle_connection_the_database_dropped_is_replaced_before_use(
    database_url: str,
) -> None:
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0)
    ping_after_idle(engine, 0.0)
    pings = _count_pings(engine)
    admin = create_engine(database_url)
    try:
        dropped = await _backend_pid(engine)
        async with admin.begin() as conn:
            # Waits until the backend is gone (up to 5 s).
            await conn.execute(text("select pg_terminate_backend(:pid, 5000)"), {"pid": dropped})
        # The next transaction gets a live connection: no error reaches the caller.
        assert await _backend_pid(engine) != dropped
        assert pings[0] == 1
    finally:
        await engine.dispose()
        await admin.dispose()
