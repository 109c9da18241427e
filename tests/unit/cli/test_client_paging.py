"""How the CLI reads a list: every page by default, one page with a limit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from berth.cli.client import BerthClient
from berth.contracts.envelope import Actor
from berth.contracts.queries import WorkloadListReply, WorkloadQuery, WorkloadView

ROWS = 7


def view(i: int) -> WorkloadView:
    return WorkloadView(
        workloadId=f"w{i}",
        name=f"n{i}",
        kind="training",
        project="p",
        createdBy="a@b.c",
        status="Running",
        submittedAt=datetime(2026, 1, 1, tzinfo=UTC),
    )


class PagedClient(BerthClient):
    """Answers the list query from ROWS workloads, as intake pages them; records each query."""

    def __init__(self) -> None:
        super().__init__(nc=_NoNats(), tracer_provider=TracerProvider(), actor=Actor(email="a@b.c"))
        self.asked: list[WorkloadQuery] = []

    async def request(self, subject: str, query: Any, reply: type[Any], timeout: float = 10) -> Any:
        self.asked.append(query)
        size = query.limit or 3
        start = int(query.after[1:]) + 1 if query.after else query.offset or 0
        rows = [view(i) for i in range(start, min(ROWS, start + size))]
        if start + size >= ROWS:
            return WorkloadListReply(workloads=rows)
        return WorkloadListReply(
            workloads=rows,
            nextOffset=None if query.after else start + size,
            nextCursor=f"c{start + size - 1}",
        )


class _NoNats:
    def jetstream(self) -> None:
        return None


async def test_without_a_limit_every_page_is_read() -> None:
    client = PagedClient()
    rows = await client.workloads(WorkloadQuery(project="p"))
    assert [r.workloadId for r in rows] == [f"w{i}" for i in range(ROWS)]
    assert [(q.offset, q.after) for q in client.asked] == [(None, None), (None, "c2"), (None, "c5")]


async def test_with_a_limit_one_page_is_read_from_the_offset() -> None:
    client = PagedClient()
    rows = await client.workloads(WorkloadQuery(project="p", limit=2, offset=4))
    assert [r.workloadId for r in rows] == ["w4", "w5"]
    assert [(q.limit, q.offset, q.after) for q in client.asked] == [(2, 4, None)]
