"""The cyclic garbage collector of a long-running process, kept off what it started with.

A module of its own, without dependencies, so that a process that is not a service (the
simulated cluster) settles its heap the same way without importing the services' runtime.
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Take what exists now (modules, classes, schemas: nearly every object of a started
    process) out of the cyclic garbage collector's reach. Every full collection would otherwise
    walk them all again: about 150,000 objects, up to a third of a service's CPU under load."""
    gc.collect()
    gc.freeze()
