"""The ownership rule (pure)."""

from __future__ import annotations


def decide(
    *, actor: str, action: str, creator: str | None, cluster_id: str | None, protection: bool
) -> str | None:
    """None when ``actor`` may perform ``action``; otherwise the reason it may not."""
    if creator is None:
        return "unknown workload: it was never accepted, or its record has not arrived yet"
    if protection and actor != creator:
        return (
            f"workload ownership protection is on in cluster {cluster_id}: "
            f"only its creator {creator} may {action} it"
        )
    return None
