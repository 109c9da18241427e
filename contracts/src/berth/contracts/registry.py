"""Every event type berth publishes, in one list.

Event classes register themselves when their module is imported; importing every module that
defines events here makes the list complete wherever it is used (schema export, tests).
"""

from __future__ import annotations

from berth.contracts import catalog, events, policy
from berth.contracts.envelope import Event

MODULES = (events, catalog, policy)
ALL_EVENTS: tuple[type[Event], ...] = tuple(Event.registry.values())
