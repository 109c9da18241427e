"""Each enforcing service's own copy of the access rules, fed by the catalog's events, so that
deciding whether a caller may act costs no request to anyone (``berth.contracts.access`` decides;
this keeps the rules it decides over).

A service adds the table to its metadata (``access_rules_table``) and a migration
(``create_access_rules``), and registers ``keep_access_rules`` in its subscriptions. A rule
deleted before its creation arrives (the two events come through separate consumers) stays
deleted: the deletion is kept as a tombstone, and only a newer creation of the same rule (the
same grant made again) brings it back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

from sqlalchemy import Boolean, Column, ColumnElement, DateTime, MetaData, Table, Text, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from berth.contracts.access import AccessRule, AccessRuleCreatedV1, AccessRuleDeletedV1
from berth.shared.consumer import Emitter, Incoming, Subscription, UnitOfWork

ACCESS_RULES = "access_rules"


def _columns() -> list[Column[Any]]:
    return [
        Column("id", Text, primary_key=True),
        Column("rule", JSONB, nullable=False),
        # The rule's createdAt: which incarnation of a grant made again the row is about.
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("deleted", Boolean, nullable=False, server_default="false"),
    ]


def access_rules_table(metadata: MetaData) -> Table:
    return Table(ACCESS_RULES, metadata, *_columns())


def in_force(table: Table) -> ColumnElement[bool]:
    """Which rows of a copy are rules in force (a deleted rule stays, as a tombstone): for a
    service that reads them in a statement of its own."""
    return table.c.deleted.is_(False)


def create_access_rules(op: Any, schema: str) -> None:
    """The table, from a service's migration (``op`` is alembic's ``op``)."""
    op.create_table(ACCESS_RULES, *_columns(), schema=schema)


def drop_access_rules(op: Any, schema: str) -> None:
    op.drop_table(ACCESS_RULES, schema=schema)


class AccessRules(Protocol):
    """A service's copy of the rules, inside its unit of work's transaction."""

    async def record_created(self, rules: Sequence[AccessRule]) -> None:
        """Add rules; one already deleted stays deleted."""

    async def record_deleted(self, rules: Sequence[AccessRule]) -> None: ...

    async def access_rules(self) -> list[AccessRule]:
        """Every rule in force."""

    async def all_access_rules(self) -> list[AccessRule]:
        """Every rule ever recorded, deleted ones included."""


class SqlAccessRules:
    def __init__(self, conn: AsyncConnection, table: Table) -> None:
        self._conn = conn
        self._table = table

    def _rows(self, rules: Sequence[AccessRule], deleted: bool) -> list[dict[str, Any]]:
        # One row per id (a batch may carry the same rule twice): the newest incarnation.
        newest = {r.id: r for r in sorted(rules, key=lambda r: r.createdAt)}
        return [
            {
                "id": r.id,
                "rule": r.model_dump(mode="json"),
                "created_at": r.createdAt,
                "deleted": deleted,
            }
            for r in newest.values()
        ]

    async def record_created(self, rules: Sequence[AccessRule]) -> None:
        if rules:
            stmt = insert(self._table).values(self._rows(rules, False))
            await self._conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["id"],
                    set_={
                        "rule": stmt.excluded.rule,
                        "created_at": stmt.excluded.created_at,
                        "deleted": False,
                    },
                    where=self._table.c.created_at < stmt.excluded.created_at,
                )
            )

    async def record_deleted(self, rules: Sequence[AccessRule]) -> None:
        if rules:
            stmt = insert(self._table).values(self._rows(rules, True))
            await self._conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["id"],
                    set_={"deleted": True},
                    where=self._table.c.created_at <= stmt.excluded.created_at,
                )
            )

    async def access_rules(self) -> list[AccessRule]:
        rows = await self._conn.execute(select(self._table.c.rule).where(in_force(self._table)))
        return [AccessRule.model_validate(r) for r in rows.scalars()]

    async def all_access_rules(self) -> list[AccessRule]:
        rows = await self._conn.execute(select(self._table.c.rule))
        return [AccessRule.model_validate(r) for r in rows.scalars()]


class InMemoryAccessRules:
    """The fake for unit tests; rolls back with a ``FakeUnitOfWork``."""

    def __init__(self, rules: Sequence[AccessRule] = ()) -> None:
        self.rules: dict[str, tuple[AccessRule, bool]] = {r.id: (r, False) for r in rules}

    async def record_created(self, rules: Sequence[AccessRule]) -> None:
        for rule in rules:
            known = self.rules.get(rule.id)
            if known is None or known[0].createdAt < rule.createdAt:
                self.rules[rule.id] = (rule, False)

    async def record_deleted(self, rules: Sequence[AccessRule]) -> None:
        for rule in rules:
            known = self.rules.get(rule.id)
            if known is None or known[0].createdAt <= rule.createdAt:
                self.rules[rule.id] = (rule, True)

    async def access_rules(self) -> list[AccessRule]:
        return [rule for rule, deleted in self.rules.values() if not deleted]

    async def all_access_rules(self) -> list[AccessRule]:
        return [rule for rule, _ in self.rules.values()]

    def snapshot(self) -> dict[str, tuple[AccessRule, bool]]:
        return dict(self.rules)

    def restore(self, snapshot: dict[str, tuple[AccessRule, bool]]) -> None:
        self.rules = dict(snapshot)


RulesOf = Callable[[Emitter], AccessRules]
"""A service's copy of the rules inside a unit of work: the ``rules=`` seam of its handlers."""


def sql_rules(table: Table) -> RulesOf:
    """The copy in ``table``, on the unit of work's connection."""

    def of(unit: Emitter) -> AccessRules:
        if not isinstance(unit, UnitOfWork):
            raise TypeError(f"the SQL store needs a database unit of work, not {unit!r}")
        return SqlAccessRules(unit.conn, table)

    return of


async def record_created(
    items: list[Incoming[AccessRuleCreatedV1]], unit: Emitter, *, store: RulesOf
) -> None:
    await store(unit).record_created([i.event.data for i in items])


async def record_deleted(
    items: list[Incoming[AccessRuleDeletedV1]], unit: Emitter, *, store: RulesOf
) -> None:
    await store(unit).record_deleted([i.event.data for i in items])


def subscriptions(role: str, table: Table) -> list[Subscription[Any]]:
    """The two subscriptions that keep a service's copy (durables as the events declare)."""
    store = sql_rules(table)
    return [
        Subscription(
            AccessRuleCreatedV1,
            AccessRuleCreatedV1.durable(role),
            partial(record_created, store=store),
            "record access rule",
        ),
        Subscription(
            AccessRuleDeletedV1,
            AccessRuleDeletedV1.durable(role),
            partial(record_deleted, store=store),
            "forget access rule",
        ),
    ]


async def read_rules(engine: AsyncEngine, table: Table) -> list[AccessRule]:
    """The rules in force, for a query answered outside any unit of work."""
    async with engine.connect() as conn:
        return await SqlAccessRules(conn, table).access_rules()
