"""Who is who on the bus: the roles a NATS credential stands for.

Every event class declares the roles that publish it (``Event.PRODUCERS``) and the roles that
consume it, with their durable consumer names (``Event.CONSUMERS``); ``berth.contracts.rpc``
declares who serves and who may call each request-reply subject. The NATS permissions of every
role are generated from these declarations, so the permission table cannot drift from what the
services do.

Roles: one per service; ``ui`` for upstream UIs and the CLI (publishes only requests, reads the
answers); ``agent`` for a cluster's agent (the cluster side: applies approved workloads,
authorized actions and desired config, reports phases and config; the scheduler-adapter is its
cluster's agent today, so its role includes what ``agent`` may do); ``admin`` for operators.
"""

from __future__ import annotations

from dataclasses import dataclass

INTAKE = "intake"
POLICY = "policy"
CATALOG = "catalog"
CLUSTER_SYNC = "cluster-sync"
OWNERSHIP = "ownership"
SCHEDULER_ADAPTER = "scheduler-adapter"
UI = "ui"
AGENT = "agent"
ADMIN = "admin"

SERVICES: tuple[str, ...] = (INTAKE, POLICY, CATALOG, CLUSTER_SYNC, OWNERSHIP, SCHEDULER_ADAPTER)
ROLES: tuple[str, ...] = (*SERVICES, UI, AGENT, ADMIN)

# Roles whose events carry a free-form ``source`` (a UI names itself): consumers cannot check it.
FREE_SOURCE: frozenset[str] = frozenset({UI})

# Replaced by the cluster id in durable names of per-cluster consumers.
CLUSTER = "{cluster}"


@dataclass(frozen=True)
class Consumer:
    """Roles that consume an event type, and how.

    ``durable`` names the JetStream durable pull consumer (one consumer shared by every replica
    of those roles; ``{cluster}`` in it stands for the cluster id of a per-cluster consumer);
    ``None`` means the roles follow the events on core NATS, as UIs do, with no durable."""

    roles: tuple[str, ...]
    durable: str | None = None

    def durable_for(self, cluster: str) -> str:
        assert self.durable is not None
        return self.durable.replace(CLUSTER, cluster)


def source_of(role: str) -> str:
    """The CloudEvents ``source`` of events a role emits."""
    return f"/berth/{role}"


def role_of_source(source: str) -> str | None:
    """The role a ``source`` names, or None when it names none."""
    name = source.removeprefix("/berth/")
    return name if name != source and name in ROLES else None


def inbox_prefix(role: str) -> str:
    """The reply-subject prefix of a role's connections: each role reads only its own replies."""
    return f"_INBOX_{role}"
