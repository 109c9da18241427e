"""Every event type berth publishes, in one list.

Event classes register themselves when their module is imported; importing every module that
defines events here makes the list complete wherever it is used (schema export, tests).
"""

from __future__ import annotations

from berth.contracts import catalog, events, policy
from berth.contracts.envelope import Event
from berth.contracts.subjects import STREAMS, WILDCARD_STREAMS

MODULES = (events, catalog, policy)
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
