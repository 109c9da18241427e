"""Stream and subject names: strings only, so any client can use them without a NATS import.

Subjects are ``<domain>.<event>.v<major>.<subject id>``; one JetStream stream per domain holds
the subjects of that domain's known events. Request-reply queries live under ``rpc.`` and are
never persisted.
"""

from __future__ import annotations

import re

# A subject id is one NATS token: no dots, wildcards, whitespace or control characters. Kept to
# the characters every id berth makes uses (uuid hex, DNS labels joined with dashes).
SUBJECT_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")


def subject_token_problem(value: str) -> str | None:
    """Why ``value`` cannot be the subject id of an event (the last token of its subject)."""
    if not SUBJECT_TOKEN.fullmatch(value):
        return f"{value!r} is not a subject id: 1-128 of A-Z a-z 0-9 _ -"
    return None


STREAMS: dict[str, str] = {
    "SUBMISSION": "submission.>",
    "POLICY": "policy.>",
    "WORKLOAD": "workload.>",
    "CLUSTER": "cluster.>",
    "CATALOG": "catalog.>",
    # Spans of every service, one subject per trace, so `berth trace` can read one trace back.
    "TELEMETRY": "telemetry.>",
    # Messages no consumer could decode; kept for inspection instead of being dropped.
    "DEADLETTER": "deadletter.>",
}


# Streams whose subjects are not events of the registry; every other stream holds only the
# subjects of known event types and versions (``registry.known_subjects``).
WILDCARD_STREAMS = frozenset({"TELEMETRY", "DEADLETTER"})


def stream_for(subject: str) -> str:
    domain = subject.split(".", 1)[0]
    for name, pattern in STREAMS.items():
        if pattern.split(".", 1)[0] == domain:
            return name
    raise LookupError(f"no stream holds subject {subject}")


TELEMETRY_SPANS = "telemetry.spans.v1"  # + .<trace id>


def deadletter(service: str) -> str:
    return f"deadletter.{service}.v1"


# Request-reply (core NATS) query subjects.
RPC_CATALOG_PROJECTS_LOOKUP = "rpc.catalog.projects.lookup.v1"
RPC_WORKLOADS_GET = "rpc.intake.workloads.get.v1"
RPC_WORKLOADS_LIST = "rpc.intake.workloads.list.v1"
RPC_DRY_RUN = "rpc.intake.submissions.dry-run.v1"
# The live workloads built from given catalog assets: the catalog asks before deleting one.
RPC_WORKLOADS_USING_ASSETS = "rpc.intake.workloads.using-assets.v1"
# The workloads action requests name, with creator, place and phase: ownership asks when it
# authorizes actions, instead of following every submission and phase itself.
RPC_WORKLOADS_ACTION_TARGETS = "rpc.intake.workloads.action-targets.v1"
RPC_POLICY_EVALUATE = "rpc.policy.evaluate.v1"
RPC_RENDER = "rpc.scheduler-adapter.render.v1"  # + .<cluster id>: see rpc_render
# The clusters intake accepts submissions for (its copy of cluster-sync's registry).
RPC_CLUSTERS_LIST = "rpc.intake.clusters.list.v1"
# A cluster's reported and desired config, as cluster-sync holds them.
RPC_CLUSTERS_GET = "rpc.cluster-sync.clusters.get.v1"

# The catalog's assets (UIs put and delete through these; intake resolves submissions).
RPC_CATALOG_ASSETS_PUT = "rpc.catalog.assets.put.v1"
RPC_CATALOG_ASSETS_DELETE = "rpc.catalog.assets.delete.v1"
RPC_CATALOG_ASSETS_GET = "rpc.catalog.assets.get.v1"
RPC_CATALOG_ASSETS_LIST = "rpc.catalog.assets.list.v1"
RPC_CATALOG_ASSETS_RESOLVE = "rpc.catalog.assets.resolve.v1"
# The catalog's public key for sealing credential values (read-only; only the catalog may
# answer on rpc.catalog.*, so a client cannot be handed someone else's key).
RPC_CATALOG_KEYS_GET = "rpc.catalog.keys.get.v1"
# A cluster's agent asks for the credentials a workload's objects reference; the values come
# sealed to the key the catalog knows for that cluster, never to a key named in the request.
RPC_CATALOG_CREDENTIALS_DELIVER = "rpc.catalog.credentials.deliver.v1"
# Applications (CI pipelines, UIs acting as a service): created, listed and deleted by people;
# an application exchanges its client id and secret for a token (no token needed for that).
RPC_CATALOG_APPLICATIONS_CREATE = "rpc.catalog.applications.create.v1"
RPC_CATALOG_APPLICATIONS_LIST = "rpc.catalog.applications.list.v1"
RPC_CATALOG_APPLICATIONS_DELETE = "rpc.catalog.applications.delete.v1"
RPC_CATALOG_APPLICATIONS_TOKEN = "rpc.catalog.applications.token.v1"

# Access rules, owned by the catalog (create, delete and list; every change is also an event).
RPC_ACCESS_RULES_CREATE = "rpc.catalog.access-rules.create.v1"
RPC_ACCESS_RULES_DELETE = "rpc.catalog.access-rules.delete.v1"
RPC_ACCESS_RULES_LIST = "rpc.catalog.access-rules.list.v1"

# Request-reply subjects of the policy service (the CLI and UIs ask these directly).
RPC_POLICY_APPLY = "rpc.policy.policies.apply.v1"
RPC_POLICY_VALIDATE = "rpc.policy.policies.validate.v1"
RPC_POLICY_PATCH = "rpc.policy.policies.patch.v1"
RPC_POLICY_DELETE = "rpc.policy.policies.delete.v1"
RPC_POLICY_GET = "rpc.policy.policies.get.v1"
RPC_POLICY_EFFECTIVE = "rpc.policy.policies.effective.v1"
RPC_POLICY_LIST = "rpc.policy.policies.list.v1"


def rpc_render(cluster_id: str) -> str:
    """The render query of one cluster's agent: what a workload becomes depends on the cluster
    (its capabilities), so only that cluster's agent may answer."""
    return f"{RPC_RENDER}.{cluster_id}"


# A workload's pods (node, pool, GPUs, pending reason) and their container logs, read by its
# cluster's agent from the cluster's API: + .<cluster id>, as the render query.
RPC_PODS = "rpc.scheduler-adapter.pods.v1"
RPC_LOGS = "rpc.scheduler-adapter.logs.v1"
RPC_NODES = "rpc.scheduler-adapter.nodes.v1"


def rpc_nodes(cluster_id: str) -> str:
    return f"{RPC_NODES}.{cluster_id}"


def rpc_pods(cluster_id: str) -> str:
    return f"{RPC_PODS}.{cluster_id}"


def rpc_logs(cluster_id: str) -> str:
    return f"{RPC_LOGS}.{cluster_id}"


def rpc_health(service: str) -> str:
    return f"rpc.health.{service}.v1"
