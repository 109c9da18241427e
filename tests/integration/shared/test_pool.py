"""Pooled connections the server closed while they were idle are replaced before use; those in
steady use are not checked at every transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from berth.shared.db import create_engine


async def _terminate_other_backends(database_url: str) -> None:
    admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        await admin.dispose()


async def test_a_connection_closed_while_idle_is_replaced(database_url: str) -> None:
    engine = create_engine(database_url, idle_ping_seconds=0)
    try:
        async with engine.begin() as conn:
            before = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await _terminate_other_backends(database_url)
        async with engine.begin() as conn:
            after = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert after != before
    finally:
        await engine.dispose()


async def test_a_connection_in_steady_use_is_not_pinged(database_url: str) -> None:
    engine = create_engine(database_url, idle_ping_seconds=3600)
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    try:
        for _ in range(3):
            async with engine.begin() as conn:
                await conn.execute(text("SELECT 1"))
        # Only the transactions' own statements reached the server.
        assert statements == ["SELECT 1"] * 3
    finally:
        await engine.dispose()
