"""NATS authentication and least-privilege permissions, generated from the contracts.

One nkey user per role (``berth.contracts.roles``), all in one account with JetStream. What each
role may publish and subscribe is derived from the event classes' ``PRODUCERS``/``CONSUMERS``
and the request-reply declarations of ``berth.contracts.rpc``, so the permissions follow the
code: a service that starts emitting a new event type gets the right to publish it by declaring
it, nothing else. ``berth up`` writes the keys and the server configuration under
``.berth/nats/``; ``berth nats-config`` does the same for a real deployment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nkeys

from berth.contracts.envelope import Event
from berth.contracts.registry import ALL_EVENTS
from berth.contracts.roles import (
    ADMIN,
    AGENT,
    ROLES,
    SCHEDULER_ADAPTER,
    SERVICES,
    UI,
    inbox_prefix,
)
from berth.contracts.rpc import callable_by, served_by
from berth.contracts.subjects import TELEMETRY_SPANS, deadletter, rpc_health, stream_for

ACCOUNT = "BERTH"
CONFIG_FILE = "nats-server.conf"
DEFAULT_CLUSTERS: tuple[str, ...] = ("local",)
# The environment variable naming the file with a process's nkey seed.
CREDENTIALS_ENV = "BERTH_NATS_CREDENTIALS"


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    # Replies to requests received (request-reply responders), whatever their inbox.
    allow_responses: bool = False


def matches(pattern: str, subject: str) -> bool:
    """Whether a NATS subject pattern (``*`` one token, ``>`` the rest) covers ``subject``."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


def allows(patterns: Iterable[str], subject: str) -> bool:
    return any(matches(p, subject) for p in patterns)


def credential_file(directory: Path, role: str) -> Path:
    return directory / f"{role}.nk"


def agent_service(cluster: str, clusters: Sequence[str]) -> str:
    """The service name of ``cluster``'s agent process: the first cluster's is the
    scheduler-adapter itself, each further one ``scheduler-adapter-<cluster>`` (its health
    subject, dead letters and logs). Every agent connects as the scheduler-adapter role."""
    return SCHEDULER_ADAPTER if cluster == clusters[0] else f"{SCHEDULER_ADAPTER}-{cluster}"


def _agent_names(clusters: Sequence[str]) -> list[str]:
    return [agent_service(c, clusters) for c in clusters[1:]]


# --- permissions -------------------------------------------------------------------------------


def produced_by(role: str) -> list[type[Event]]:
    return [e for e in ALL_EVENTS if role in e.PRODUCERS]


def durables_of(role: str, clusters: Sequence[str]) -> list[tuple[type[Event], str]]:
    """(event type, durable name) of every durable consumer ``role`` reads."""
    found: list[tuple[type[Event], str]] = []
    for event in ALL_EVENTS:
        for consumer in event.CONSUMERS:
            if role in consumer.roles and consumer.durable is not None:
                names = {consumer.durable_for(cluster) for cluster in clusters}
                found.extend((event, name) for name in sorted(names))
    return found


def followed_by(role: str) -> list[type[Event]]:
    """Event types ``role`` follows on core NATS, without a durable consumer."""
    return [
        e for e in ALL_EVENTS if any(role in c.roles and c.durable is None for c in e.CONSUMERS)
    ]


def streams_of(role: str, clusters: Sequence[str] = DEFAULT_CLUSTERS) -> list[str]:
    """The streams a service or agent publishes to or consumes from (it checks they exist)."""
    prefixes = [e.subject_prefix() for e in produced_by(role)]
    prefixes += [e.subject_prefix() for e, _ in durables_of(role, clusters)]
    streams = {stream_for(p) for p in prefixes}
    if role in SERVICES or role == AGENT:
        streams.add(stream_for(deadletter(role)))
    return sorted(streams)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def role_permissions(role: str, clusters: Sequence[str] = DEFAULT_CLUSTERS) -> Permissions:
    if role == ADMIN:
        # Operators: create and update streams, inspect anything, replay dead letters (which
        # re-publishes events of any type). Never given to a service or a UI.
        return Permissions(publish=(">",), subscribe=(">",), allow_responses=True)
    if role not in ROLES:
        raise LookupError(f"unknown role {role!r}")
    publish: list[str] = []
    subscribe: list[str] = [f"{inbox_prefix(role)}.>"]
    if role != UI:
        publish.append("$JS.API.INFO")
        publish += [f"$JS.API.STREAM.INFO.{stream}" for stream in streams_of(role, clusters)]
        for event, durable in durables_of(role, clusters):
            stream = stream_for(event.subject_prefix())
            consumer = f"{stream}.{durable}"
            publish += [
                f"$JS.API.CONSUMER.INFO.{consumer}",
                f"$JS.API.CONSUMER.CREATE.{consumer}",
                f"$JS.API.CONSUMER.CREATE.{consumer}.>",
                f"$JS.API.CONSUMER.DURABLE.CREATE.{consumer}",
                f"$JS.API.CONSUMER.MSG.NEXT.{consumer}",
                f"$JS.ACK.{consumer}.>",
            ]
        publish.append(f"{deadletter(role)}.>")
        if role == SCHEDULER_ADAPTER:
            publish += [f"{deadletter(name)}.>" for name in _agent_names(clusters)]
    publish += [f"{event.subject_prefix()}.*" for event in produced_by(role)]
    publish.append(f"{TELEMETRY_SPANS}.*")
    publish += [rpc.subject for rpc in callable_by(role)]
    subscribe += [rpc.subject for rpc in served_by(role)]
    if role == SCHEDULER_ADAPTER:
        subscribe += [rpc_health(name) for name in _agent_names(clusters)]
    elif role == UI:
        publish += [rpc_health(name) for name in _agent_names(clusters)]
    if role == UI:
        subscribe += [f"{event.subject_prefix()}.*" for event in followed_by(role)]
        # `berth trace` reads a trace's spans message by message. No consumer: one could
        # deliver the stream's messages (spans a UI wrote) to any subject.
        publish.append(f"$JS.API.STREAM.MSG.GET.{stream_for(TELEMETRY_SPANS)}")
    return Permissions(
        publish=_unique(publish),
        subscribe=_unique(subscribe),
        allow_responses=bool(served_by(role)),
    )


def permission_table(clusters: Sequence[str] = DEFAULT_CLUSTERS) -> dict[str, Permissions]:
    return {role: role_permissions(role, clusters) for role in ROLES}


# --- server configuration ------------------------------------------------------------------------


def server_config(public_keys: dict[str, str], clusters: Sequence[str] = DEFAULT_CLUSTERS) -> str:
    """nats-server configuration text: one account with JetStream, one nkey user per role.

    No anonymous user: a connection without one of these keys is refused."""

    def strings(items: Sequence[str]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    lines = [
        "# Generated from berth's event contracts (berth nats-config): edit the contracts, not",
        "# this file. One nkey user per role; permissions are allow lists.",
        "accounts {",
        f"  {ACCOUNT} {{",
        "    jetstream: enabled",
        "    users: [",
    ]
    for role in ROLES:
        perms = role_permissions(role, clusters)
        lines += [
            f"      # {role}",
            "      {",
            f"        nkey: {json.dumps(public_keys[role])}",
            "        permissions: {",
            f"          publish: {{allow: {strings(perms.publish)}}}",
            f"          subscribe: {{allow: {strings(perms.subscribe)}}}",
        ]
        if perms.allow_responses:
            lines.append("          allow_responses: true")
        lines += ["        }", "      }"]
    lines += ["    ]", "  }", "}", ""]
    return "\n".join(lines)


def markdown_table(clusters: Sequence[str] = DEFAULT_CLUSTERS) -> str:
    """The permission table for people: events, request-reply subjects and reads per role.

    JetStream API and reply subjects are left out; ``berth nats-config`` prints them all."""
    rows = [
        "| role | publishes | answers | calls | consumes (durable) | follows |",
        "|---|---|---|---|---|---|",
    ]
    for role in ROLES:
        if role == ADMIN:
            rows.append(f"| `{role}` | everything | | | | everything |")
            continue
        cells = [
            [e.subject_prefix() for e in produced_by(role)],
            [r.subject for r in served_by(role)],
            [r.subject for r in callable_by(role)],
            [f"{e.subject_prefix()} ({d})" for e, d in durables_of(role, clusters)],
            [e.subject_prefix() for e in followed_by(role)],
        ]
        rows.append(
            f"| `{role}` | " + " | ".join("<br>".join(f"`{x}`" for x in c) for c in cells) + " |"
        )
    return "\n".join(rows)


# --- keys ----------------------------------------------------------------------------------------


def _write_private(path: Path, content: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def public_key(seed_file: Path) -> str:
    keys = nkeys.from_seed(bytearray(seed_file.read_bytes().strip()))
    try:
        return str(keys.public_key.decode())
    finally:
        keys.wipe()


def ensure_credentials(directory: Path, clusters: Sequence[str] = DEFAULT_CLUSTERS) -> Path:
    """One nkey seed per role in ``directory`` (kept when it exists) and the server config.

    Files are readable by their owner only; returns the configuration's path."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    public_keys: dict[str, str] = {}
    for role in ROLES:
        path = credential_file(directory, role)
        if not path.exists():
            _write_private(path, nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
        os.chmod(path, 0o600)
        public_keys[role] = public_key(path)
    config = directory / CONFIG_FILE
    _write_private(config, server_config(public_keys, clusters).encode())
    return config
