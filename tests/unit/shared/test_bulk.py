"""One INSERT for a batch's rows: which tables can take it, and the arrays it sends."""

from __future__ import annotations

import json

from sqlalchemy import Column, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, dialect

from berth.shared import bulk

metadata = MetaData()
plain = Table(
    "plain",
    metadata,
    Column("id", Text, primary_key=True),
    Column("doc", JSONB),
    Column("ref", JSONB(none_as_null=True)),
)
python_default = Table(
    "python_default",
    metadata,
    Column("id", Text, primary_key=True),
    Column("made_by", Text, default="berth"),
)


def test_rows_become_one_array_per_column_json_as_text_and_none_as_sqlalchemy_writes_it() -> None:
    found = bulk.statement(
        plain, [{"id": "a", "doc": {"x": 1}, "ref": None}, {"id": "b", "doc": None, "ref": [1]}]
    )
    assert found is not None
    stmt, params = found
    assert params == {
        "id": ["a", "b"],
        "doc": [json.dumps({"x": 1}), "null"],
        "ref": [None, "[1]"],
    }
    sql = str(stmt.compile(dialect=dialect()))
    assert "unnest" in sql
    assert "ON CONFLICT" not in sql


def test_do_nothing_on_conflict_and_the_statement_is_built_once() -> None:
    rows = [{"id": "a", "doc": {}, "ref": None}]
    first = bulk.statement(plain, rows, do_nothing=True)
    again = bulk.statement(plain, rows, do_nothing=True)
    assert first is not None and again is not None
    assert first[0] is again[0]
    assert "ON CONFLICT DO NOTHING" in str(first[0].compile(dialect=dialect()))


def test_rows_that_leave_out_a_python_default_or_differ_in_keys_are_not_bulk_inserted() -> None:
    assert bulk.statement(python_default, [{"id": "a"}]) is None
    assert bulk.statement(python_default, [{"id": "a", "made_by": "me"}]) is not None
    assert bulk.statement(plain, [{"id": "a", "doc": {}, "ref": None}, {"id": "b"}]) is None
