"""A unit of work hands its rows to the outbox relay as soon as it commits, before its
after-commit callbacks run: a callback's round trips (the adapter applying objects to a cluster)
must not hold the committed events back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from berth.shared.consumer import unit_of_work
from berth.shared.db import OUTBOX, service_metadata


@pytest.mark.parametrize("rows", [3, 1, 0])
async def test_the_rows_are_handed_over_before_the_after_commit_callbacks_run(rows: int) -> None:
    order: list[str] = []
    handed: list[tuple[list[int], list[dict[str, Any]]]] = []

    class Relay:
        def hand_over(self, ids: list[int], written: list[dict[str, Any]]) -> None:
            order.append("hand over")
            handed.append((list(ids), written))

    class Result:
        def scalars(self) -> list[int]:
            # RETURNING may give the ids in any order: they are drawn in the rows' order.
            return [12, 10, 11] if rows == 3 else [10]

    class Connection:
        async def execute(self, *_args: Any) -> Result:
            order.append("write")
            return Result()

    class Engine:
        @contextlib.asynccontextmanager
        async def begin(self) -> AsyncIterator[Connection]:
            yield Connection()
            order.append("commit")

    async def callback() -> None:
        order.append("callback")

    table = service_metadata("test").tables[f"test.{OUTBOX}"]
    written = [{"subject": f"s.{i}", "payload": b"{}", "headers": {}} for i in range(rows)]
    async with unit_of_work(Engine(), table, Relay()) as unit:  # type: ignore[arg-type]
        unit.rows.extend(written)
        unit.after_commit.append(callback)

    # Nothing to publish: nothing to hand over.
    expected = ["write", "commit", "hand over", "callback"] if rows else ["commit", "callback"]
    assert order == expected
    assert handed == ([([10, 11, 12] if rows == 3 else [10], written)] if rows else [])
