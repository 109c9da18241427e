"""A service process starts with what it built out of the cyclic garbage collector's reach."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

from berth.shared import heap, service

pytestmark = pytest.mark.unit


class _App:
    frozen_at_start: int | None = None
    young_threshold: int | None = None

    async def run(self) -> None:
        self.frozen_at_start = gc.get_freeze_count()
        self.young_threshold = gc.get_threshold()[0]


def test_the_started_heap_is_frozen_before_the_app_runs(
    collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "configure_logging", lambda settings: None)
    app = _App()
    assert gc.get_freeze_count() == 0
    service.run(app, settings=None)  # type: ignore[arg-type]
    assert app.frozen_at_start is not None and app.frozen_at_start > 1000
    assert app.young_threshold == heap.YOUNG_COLLECTION_EVERY > 700
    assert gc.isenabled()


def test_garbage_cycles_are_collected_rather_than_frozen(collector: None) -> None:
    class Node:
        other: Any = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    heap.settle_heap()
    assert gone() is None
