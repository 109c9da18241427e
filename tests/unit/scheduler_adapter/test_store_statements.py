"""The adapter's SQL store builds its hot statements once: batch after batch, only the parameters
change (the statements' round trips are in tests/integration/scheduler_adapter/test_store.py)."""

from __future__ import annotations

from typing import Any

import pytest

from berth.scheduler_adapter.store import PhaseChange, SqlAdapterStore

pytestmark = pytest.mark.unit


class _Rows(list[Any]):
    pass


class RecordingConnection:
    """Records each statement executed and its parameters; returns no rows."""

    def __init__(self) -> None:
        self.executed: list[tuple[Any, Any]] = []

    async def execute(self, statement: Any, parameters: Any = None) -> _Rows:
        self.executed.append((statement, parameters))
        return _Rows()


async def test_the_store_runs_the_same_statements_batch_after_batch() -> None:
    conn = RecordingConnection()
    store = SqlAdapterStore(conn)  # type: ignore[arg-type]
    for batch in (["a", "b"], ["c"]):
        await store.current(batch, lock=True, manifests=False)
        await store.set_phases(
            [PhaseChange(w, "Running") for w in batch]
            + [PhaseChange(w, "Stopped", desired="Stopped") for w in batch]
        )
        await store.usage(["p"])
        await store.held(["p"])
        await store.admit(batch)
    first, second = conn.executed[:6], conn.executed[6:]
    assert len(first) == len(second) == 6
    # Built once: no statement is constructed (and traversed for its cache key) per batch.
    assert all(a[0] is b[0] for a, b in zip(first, second, strict=True))
    # What changes from batch to batch is the parameters alone.
    assert first[0][1] == {"ids": ["a", "b"]} and second[0][1] == {"ids": ["c"]}
    assert second[1][1] == {"wids": ["c"], "phases": ["Running"], "messages": [""]}
    assert second[2][1] == {
        "wids": ["c"],
        "phases": ["Stopped"],
        "messages": [""],
        "intents": ["Stopped"],
    }
