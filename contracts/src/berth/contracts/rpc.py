"""Who serves each request-reply subject, and who may call it.

With the ``PRODUCERS``/``CONSUMERS`` of every event, this is what the NATS permissions of each
role are generated from (see ``berth.contracts.roles``).

``ui`` may call the read-only queries and also the write queries UIs act through today
(catalog assets put/delete, policy apply/validate/patch/delete): they are the request side of
UI actions, each checked by the serving service and announced by the same events as the
event-driven path.
"""

from __future__ import annotations

from dataclasses import dataclass

from berth.contracts.roles import (
    ADMIN,
    AGENT,
    CATALOG,
    CLUSTER_SYNC,
    INTAKE,
    OWNERSHIP,
    POLICY,
    SCHEDULER_ADAPTER,
    SERVICES,
    UI,
)
from berth.contracts.subjects import (
    RPC_ACCESS_RULES_CREATE,
    RPC_ACCESS_RULES_DELETE,
    RPC_ACCESS_RULES_LIST,
    RPC_CATALOG_APPLICATIONS_CREATE,
    RPC_CATALOG_APPLICATIONS_DELETE,
    RPC_CATALOG_APPLICATIONS_LIST,
    RPC_CATALOG_APPLICATIONS_TOKEN,
    RPC_CATALOG_ASSETS_DELETE,
    RPC_CATALOG_ASSETS_GET,
    RPC_CATALOG_ASSETS_LIST,
    RPC_CATALOG_ASSETS_PUT,
    RPC_CATALOG_ASSETS_RESOLVE,
    RPC_CATALOG_CREDENTIALS_DELIVER,
    RPC_CATALOG_KEYS_GET,
    RPC_CATALOG_PROJECTS_LOOKUP,
    RPC_CLUSTERS_GET,
    RPC_CLUSTERS_LIST,
    RPC_DRY_RUN,
    RPC_LOGS,
    RPC_NODES,
    RPC_PODS,
    RPC_POLICY_APPLY,
    RPC_POLICY_DELETE,
    RPC_POLICY_EFFECTIVE,
    RPC_POLICY_EVALUATE,
    RPC_POLICY_GET,
    RPC_POLICY_LIST,
    RPC_POLICY_PATCH,
    RPC_POLICY_VALIDATE,
    RPC_RENDER,
    RPC_WORKLOADS_ACTION_TARGETS,
    RPC_WORKLOADS_GET,
    RPC_WORKLOADS_LIST,
    RPC_WORKLOADS_USING_ASSETS,
    rpc_health,
)


@dataclass(frozen=True)
class Rpc:
    subject: str
    server: str
    callers: tuple[str, ...]
    # Changes state (still answered by the serving service's own checks).
    writes: bool = False
    # Answered without a bearer token: health, the catalog's public sealing key, and the
    # exchange of an application's secret for a token. Every other request a UI makes
    # carries one, and the serving service acts for the actor it proves.
    anonymous: bool = False

    def matches(self, subject: str) -> bool:
        prefix, star, _ = self.subject.partition("*")
        return subject.startswith(prefix) if star else subject == self.subject


RPCS: tuple[Rpc, ...] = (
    Rpc(RPC_WORKLOADS_GET, INTAKE, (UI,)),
    Rpc(RPC_WORKLOADS_LIST, INTAKE, (UI,)),
    Rpc(RPC_DRY_RUN, INTAKE, (UI,)),
    Rpc(RPC_WORKLOADS_USING_ASSETS, INTAKE, (CATALOG,)),
    Rpc(RPC_WORKLOADS_ACTION_TARGETS, INTAKE, (OWNERSHIP,)),
    Rpc(RPC_POLICY_EVALUATE, POLICY, (INTAKE, UI)),
    Rpc(RPC_POLICY_GET, POLICY, (UI,)),
    Rpc(RPC_POLICY_EFFECTIVE, POLICY, (UI,)),
    Rpc(RPC_POLICY_LIST, POLICY, (UI,)),
    Rpc(RPC_POLICY_VALIDATE, POLICY, (UI,)),
    Rpc(RPC_POLICY_APPLY, POLICY, (UI,), writes=True),
    Rpc(RPC_POLICY_PATCH, POLICY, (UI,), writes=True),
    Rpc(RPC_POLICY_DELETE, POLICY, (UI,), writes=True),
    Rpc(RPC_CLUSTERS_LIST, INTAKE, (UI,)),
    Rpc(RPC_CLUSTERS_GET, CLUSTER_SYNC, (UI,)),
    # One subject per cluster (rpc_render): the workload's own cluster's agent answers. A UI
    # asks it for the objects an approved workload is rendered into (nothing is applied).
    Rpc(f"{RPC_RENDER}.*", SCHEDULER_ADAPTER, (INTAKE, UI)),
    # A workload's pods and container logs, read from its cluster's API by that cluster's agent.
    Rpc(f"{RPC_PODS}.*", SCHEDULER_ADAPTER, (UI,)),
    Rpc(f"{RPC_LOGS}.*", SCHEDULER_ADAPTER, (UI,)),
    Rpc(f"{RPC_NODES}.*", SCHEDULER_ADAPTER, (UI,)),
    Rpc(RPC_CATALOG_PROJECTS_LOOKUP, CATALOG, (INTAKE, POLICY, UI)),
    Rpc(RPC_CATALOG_ASSETS_GET, CATALOG, (UI,)),
    Rpc(RPC_CATALOG_ASSETS_LIST, CATALOG, (UI,)),
    Rpc(RPC_CATALOG_ASSETS_RESOLVE, CATALOG, (INTAKE, UI)),
    Rpc(RPC_CATALOG_ASSETS_PUT, CATALOG, (UI,), writes=True),
    Rpc(RPC_CATALOG_ASSETS_DELETE, CATALOG, (UI,), writes=True),
    Rpc(RPC_ACCESS_RULES_CREATE, CATALOG, (UI,), writes=True),
    Rpc(RPC_ACCESS_RULES_DELETE, CATALOG, (UI,), writes=True),
    Rpc(RPC_ACCESS_RULES_LIST, CATALOG, (UI,)),
    # The catalog's public key, to seal credential values to on the way in.
    Rpc(RPC_CATALOG_KEYS_GET, CATALOG, (UI,), anonymous=True),
    # Credential values sealed to the asking cluster's registered agent key.
    Rpc(RPC_CATALOG_CREDENTIALS_DELIVER, CATALOG, (SCHEDULER_ADAPTER, AGENT)),
    Rpc(RPC_CATALOG_APPLICATIONS_CREATE, CATALOG, (UI,), writes=True),
    Rpc(RPC_CATALOG_APPLICATIONS_LIST, CATALOG, (UI,)),
    Rpc(RPC_CATALOG_APPLICATIONS_DELETE, CATALOG, (UI,), writes=True),
    # The client id and secret are the credential here: the exchange is how a token is got.
    Rpc(RPC_CATALOG_APPLICATIONS_TOKEN, CATALOG, (UI,), anonymous=True),
    *(Rpc(rpc_health(service), service, (UI, ADMIN), anonymous=True) for service in SERVICES),
)


def rpc_for(subject: str) -> Rpc | None:
    """The declaration of the request-reply subject ``subject``, if any."""
    return next((rpc for rpc in RPCS if rpc.matches(subject)), None)


def served_by(role: str) -> tuple[Rpc, ...]:
    return tuple(rpc for rpc in RPCS if rpc.server == role)


def callable_by(role: str) -> tuple[Rpc, ...]:
    return tuple(rpc for rpc in RPCS if role in rpc.callers)
