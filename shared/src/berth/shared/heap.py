"""The cyclic garbage collector of a long-running berth process.

Two measured costs, both of the collector's full collections, which walk every object tracked:
- what a process starts with (modules, classes, schemas: about 150,000 objects) was walked again
  at each of them: up to a third of a service's CPU under load. It is frozen once started.
- with the interpreter's default young threshold (700 allocations), what a batch holds across its
  awaits (events, rows, API answers, watch events) outlives a few young collections and is
  promoted, and the full collections that follow came about once a second under load, a
  quarter of the agent's CPU. Collected young less often, most of it never gets old.
Reference cycles are still collected.

A module of its own, without dependencies, so that a process that is not a service (the
simulated cluster) settles its heap the same way without importing the services' runtime.
"""

from __future__ import annotations

import gc

# Allocations between two collections of the youngest generation (CPython's default: 700).
YOUNG_COLLECTION_EVERY = 50_000


def settle_heap() -> None:
    """Freeze what exists now, and collect the young generation every
    ``YOUNG_COLLECTION_EVERY`` allocations from now on. Called once a process has started."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)
