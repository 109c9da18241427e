"""Which keys of a cluster's config changed between two reports."""

from __future__ import annotations

from berth.cluster_sync.handlers import changed_keys


def test_changed_keys() -> None:
    assert changed_keys(None, {"b": 1, "a": 2}) == ["a", "b"]
    assert changed_keys({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 0}) == ["b", "c"]
    assert changed_keys({"a": 1}, {"a": 1}) == []
