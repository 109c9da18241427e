"""The base of every service's PostgreSQL store: one connection, the unit of work's."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Self

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from berth.shared import bulk
from berth.shared.consumer import UnitOfWork

Rows = Sequence[Mapping[str, Any]]
Newer = Callable[[Any], ColumnElement[bool]]
"""Given the row being written (``excluded``), when it may replace the stored one."""


class SqlStore:
    """A store on one connection (one transaction). Services subclass it with their statements;
    handlers get it through a ``store=`` seam so that tests can pass an in-memory one."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    @classmethod
    def of(cls, unit: object) -> Self:
        """The store of a unit of work: its connection, so state and events commit together."""
        if not isinstance(unit, UnitOfWork):
            raise TypeError(f"the SQL store needs a database unit of work, not {unit!r}")
        return cls(unit.conn)

    async def insert_new(self, table: Table, rows: Rows) -> None:
        """Add the rows whose primary key is not there yet, in one statement: a redelivered
        batch changes nothing."""
        if not rows:
            return
        bulk_insert = bulk.statement(table, rows, do_nothing=True)
        if bulk_insert is None:
            await self._conn.execute(insert(table).on_conflict_do_nothing(), list(rows))
        else:
            await self._conn.execute(*bulk_insert)

    async def insert_all(self, table: Table, rows: Rows) -> None:
        """Add every row, in one statement."""
        if not rows:
            return
        bulk_insert = bulk.statement(table, rows)
        if bulk_insert is None:
            await self._conn.execute(insert(table), list(rows))
        else:
            await self._conn.execute(*bulk_insert)

    async def upsert(
        self, table: Table, rows: Rows, *, update: Iterable[str], newer: Newer | None = None
    ) -> None:
        """Insert the rows, or overwrite the ``update`` columns of the row with the same primary
        key, in one statement. ``newer`` keeps a late or redelivered event from undoing a newer
        state: a row is overwritten only where it holds."""
        if not rows:
            return
        stmt = insert(table)
        await self._conn.execute(
            stmt.on_conflict_do_update(
                index_elements=list(table.primary_key.columns),
                set_={c: stmt.excluded[c] for c in update},
                where=None if newer is None else newer(stmt.excluded),
            ),
            list(rows),
        )
