"""The agent's process collects its young generation every so many allocations."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from berth.scheduler_adapter.bootstrap import YOUNG_COLLECTION_EVERY, tune_collector

pytestmark = pytest.mark.unit


@pytest.fixture
def threshold() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_the_young_generation_is_collected_every_so_many_allocations(threshold: None) -> None:
    gc.set_threshold(700, 10, 10)
    tune_collector()
    assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, 10, 10)
    assert gc.isenabled()
