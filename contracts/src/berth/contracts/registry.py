"""Every event type berth publishes, in one list.

Event classes register themselves when their module is imported. Every module of the contracts
package is imported here (found by walking the package, not listed by hand), so a new module's
events are in the list wherever it is used (schema export, permissions, tests).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import berth.contracts
from berth.contracts.envelope import Event
from berth.contracts.subjects import STREAMS, WILDCARD_STREAMS

# Tooling that itself reads the registry: importing it from here would be circular.
_NOT_CONTRACTS = frozenset({"berth.contracts.export", "berth.contracts.registry"})


def _contract_modules() -> tuple[ModuleType, ...]:
    return tuple(
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(berth.contracts.__path__, "berth.contracts.")
        if info.name not in _NOT_CONTRACTS
    )


MODULES: tuple[ModuleType, ...] = _contract_modules()
ALL_EVENTS: tuple[type[Event], ...] = tuple(Event.registry.values())


def known_subjects(stream: str) -> list[str]:
    """The subjects a stream holds: each known event's ``<domain>.<event>.v<N>.*``, so that a
    publisher of an unknown event or version gets an error at once instead of a silent store
    no consumer ever reads. Streams outside the event domains keep their wildcard."""
    pattern = STREAMS[stream]
    domain = pattern.split(".", 1)[0]
    if stream in WILDCARD_STREAMS:
        return [pattern]
    # Read at call time: event classes registered later (a newer version) are included.
    return sorted(
        f"{cls.subject_prefix()}.*"
        for cls in Event.registry.values()
        if cls.subject_prefix().split(".", 1)[0] == domain
    )
