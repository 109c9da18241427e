"""A unit of work wakes the outbox relay as soon as it commits, before its after-commit
callbacks run: a callback's round trips (the adapter applying objects to a cluster) must not
hold the committed events back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from berth.shared.consumer import unit_of_work
from berth.shared.db import OUTBOX, service_metadata


@pytest.mark.parametrize("rows", [1, 0])
async def test_the_relay_is_woken_before_the_after_commit_callbacks_run(rows: int) -> None:
    order: list[str] = []

    class Relay:
        def wake(self) -> None:
            order.append("wake")

    class Connection:
        async def execute(self, *_args: Any) -> None:
            order.append("write")

    class Engine:
        @contextlib.asynccontextmanager
        async def begin(self) -> AsyncIterator[Connection]:
            yield Connection()
            order.append("commit")

    async def callback() -> None:
        order.append("callback")

    table = service_metadata("test").tables[f"test.{OUTBOX}"]
    async with unit_of_work(Engine(), table, Relay()) as unit:  # type: ignore[arg-type]
        unit.rows.extend({"subject": "s", "payload": b"{}", "headers": {}} for _ in range(rows))
        unit.after_commit.append(callback)

    # Nothing to publish: nothing to wake.
    expected = ["write", "commit", "wake", "callback"] if rows else ["commit", "callback"]
    assert order == expected
