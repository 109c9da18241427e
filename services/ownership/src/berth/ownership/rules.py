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


def protection_in_force(reported: bool | None, desired: bool | None) -> bool:
    """Whether ownership protection applies in a cluster.

    The stricter of what the cluster's agent last reported and what administrators asked for:
    an agent that restarted may report protection off until cluster-sync has sent the setting
    down again, and its cluster must not be unprotected in between. Switching protection off
    therefore takes effect once the agent reports it off, not when it is asked for.
    """
    return bool(reported) or bool(desired)
