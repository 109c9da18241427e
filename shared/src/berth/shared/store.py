"""The base of every service's PostgreSQL store: one connection, the unit of work's."""

from __future__ import annotations

from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection

from berth.shared.consumer import UnitOfWork


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
