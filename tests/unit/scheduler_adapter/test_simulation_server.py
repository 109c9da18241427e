"""The simulated cluster's process keeps its collector off what it holds for its whole life."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import pytest

from berth.scheduler_adapter.simulation import server
from berth.shared.heap import YOUNG_COLLECTION_EVERY

pytestmark = pytest.mark.unit


def test_the_process_starts_with_a_settled_heap_and_rarer_young_collections(
    collector: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def run(coroutine: Any) -> None:
        seen["frozen"], seen["threshold"] = gc.get_freeze_count(), gc.get_threshold()
        coroutine.close()

    monkeypatch.setattr(server.asyncio, "run", run)
    monkeypatch.setattr(sys, "argv", ["server", "--state-dir", str(tmp_path)])
    assert gc.get_freeze_count() == 0
    server.main()
    assert seen["frozen"] > 1000
    assert seen["threshold"][0] == YOUNG_COLLECTION_EVERY > 700
