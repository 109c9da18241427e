"""A batch's rows in one INSERT: ``INSERT .. SELECT FROM unnest(:col1, :col2, ..)``.

An executemany sends the rows in one round trip, but PostgreSQL runs the statement once per
row (an executor start-up, a plan check and a result each); a multi-row VALUES is one statement
text per row count, so the server prepares it anew for every batch size it meets. One array per
column is one statement text, prepared once per connection, whatever the batch's size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Executable, Table, Text, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB, insert
from sqlalchemy.sql.type_api import TypeEngine

_STATEMENTS: dict[tuple[int, tuple[str, ...], bool, str | None], tuple[Table, Executable]] = {}


def _is_json(type_: TypeEngine[Any]) -> bool:
    return isinstance(type_, JSON | JSONB)


def _values(table: Table, name: str) -> Callable[[Any], Any]:
    """How one value of ``name`` travels in its array: JSON as its text (arrays of jsonb would
    need a codec per element), as SQLAlchemy itself would write it."""
    type_ = table.c[name].type
    if not _is_json(type_):
        return lambda value: value
    none_as_null = bool(getattr(type_, "none_as_null", False))
    return lambda value: None if value is None and none_as_null else json.dumps(value)


def _statement(
    table: Table, names: tuple[str, ...], do_nothing: bool, returning: str | None
) -> Executable:
    key = (id(table), names, do_nothing, returning)
    cached = _STATEMENTS.get(key)
    if cached is not None and cached[0] is table:
        return cached[1]
    arrays = []
    for name in names:
        type_ = table.c[name].type
        element = Text() if _is_json(type_) else type_
        arrays.append(cast(bindparam(name, type_=ARRAY(element)), ARRAY(element)))
    rows = (
        func.unnest(*arrays)
        .table_valued(*names, with_ordinality="position")
        .render_derived(name="incoming")
    )
    columns = [cast(rows.c[n], JSONB) if _is_json(table.c[n].type) else rows.c[n] for n in names]
    # Serial ids are drawn in the order the rows are inserted; the outbox publishes by id, so
    # the batch's order is stated rather than left to the plan.
    ordered = select(*columns).order_by(rows.c.position)
    stmt = insert(table).from_select(list(names), ordered)
    if do_nothing:
        stmt = stmt.on_conflict_do_nothing()
    done: Executable = stmt if returning is None else stmt.returning(table.c[returning])
    _STATEMENTS[key] = (table, done)
    return done


def can_unnest(table: Table, names: Sequence[str]) -> bool:
    """Whether rows of ``names`` can go through ``unnest``: a column left out that has a
    default computed in Python would not get it in ``INSERT .. SELECT``."""
    given = set(names)
    return all(
        c.name in given or c.default is None or c.autoincrement is True for c in table.columns
    )


# Per table and column names: None when such rows cannot go through unnest, else how each
# column's values travel (None: as they are).
Plan = list[Callable[[Any], Any] | None]
_PLANS: dict[tuple[int, tuple[str, ...]], tuple[Table, Plan | None]] = {}


def _plan(table: Table, names: tuple[str, ...]) -> Plan | None:
    key = (id(table), names)
    cached = _PLANS.get(key)
    if cached is not None and cached[0] is table:
        return cached[1]
    plan = (
        [_values(table, n) if _is_json(table.c[n].type) else None for n in names]
        if can_unnest(table, names)
        else None
    )
    _PLANS[key] = (table, plan)
    return plan


def statement(
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    do_nothing: bool = False,
    returning: str | None = None,
) -> tuple[Executable, dict[str, list[Any]]] | None:
    """The one statement inserting ``rows`` (all with the same keys) and its parameters, or
    None when they cannot be inserted that way (the caller then uses an executemany). With
    ``returning``, the statement returns that column of the rows it inserted."""
    names = tuple(rows[0])
    if any(len(r) != len(names) for r in rows):
        return None
    plan = _plan(table, names)
    if plan is None:
        return None
    params = {}
    for name, to_value in zip(names, plan, strict=True):
        try:
            if to_value is None:
                params[name] = [r[name] for r in rows]
            else:
                params[name] = [to_value(r[name]) for r in rows]
        except KeyError:
            return None
    return _statement(table, names, do_nothing, returning), params
