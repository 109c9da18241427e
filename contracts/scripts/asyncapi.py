"""Write (or, with --check, verify) one AsyncAPI 3 document per service into contracts/asyncapi/,
and one for the ``ui`` role (what a UI publishes, follows and asks).

Run from the repository root with the development environment, which has every service:
``python contracts/scripts/asyncapi.py [--check]``.

FastStream describes the channels, operations and payloads each service wires. Added here, from
the contracts, so that a client in another language needs nothing else: the headers (Nats-Msg-Id,
W3C traceparent/tracestate, Authorization with the caller's bearer token), the
correlation id where it is (the envelope's ``correlationid``), the ``{subject}`` parameter, the
reply of every request-reply operation (its reply model, or an ErrorReply), the stream of every
event channel (``x-stream``), the phases (terminal per kind, settled, quota-free, action results:
``x-phases``), the dead letters the service writes with their headers, and the security scheme:
one NATS nkey user per role, each operation listing the roles that may perform it (from the
events' PRODUCERS/CONSUMERS and ``berth.contracts.rpc``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from berth.contracts.envelope import Event
from berth.contracts.phases import (
    ACTION_RESULTS,
    QUOTA_FREE_PHASES,
    SETTLED_PHASES_BY_KIND,
    TERMINAL_PHASES_BY_KIND,
)
from berth.contracts.queries import ErrorReply
from berth.contracts.roles import ROLES, UI
from berth.contracts.rpc import RPCS, Rpc
from berth.contracts.subjects import deadletter, stream_for
from berth.shared import deadletters

OUT = Path(__file__).resolve().parent.parent / "asyncapi"
SERVICES = {
    "intake": ("berth.intake", "IntakeSettings"),
    "policy": ("berth.policy", "PolicySettings"),
    "catalog": ("berth.catalog", "CatalogSettings"),
    "cluster-sync": ("berth.cluster_sync", "ClusterSyncSettings"),
    "ownership": ("berth.ownership", "OwnershipSettings"),
    "scheduler-adapter": ("berth.scheduler_adapter", "SchedulerAdapterSettings"),
}


ROLE_DOCUMENTS = (UI,)


def _build(service: str) -> Any:
    package, settings_class = SERVICES[service]
    bootstrap = importlib.import_module(f"{package}.bootstrap")
    config = importlib.import_module(f"{package}.config")
    # Fixed settings, so the document does not depend on the environment it is generated in.
    settings = getattr(config, settings_class)(nats_url="nats://127.0.0.1:4222")
    return bootstrap.build(settings)


def all_rpc_models() -> dict[str, Any]:
    models: dict[str, Any] = {}
    for service in SERVICES:
        models.update(_build(service).rpc_models)
    return models


def document(service: str) -> dict[str, Any]:
    """The document of a service, or of a role in ROLE_DOCUMENTS."""
    if service in ROLE_DOCUMENTS:
        return role_document(service, all_rpc_models())
    built = _build(service)
    spec: dict[str, Any] = built.spec_app.schema.to_specification().to_jsonable()
    return enrich(spec, built.name, built.rpc_models)


# --- what the generated document leaves out, added from the contracts ---------------------------

NKEY_SCHEME = "nkey-{role}"
SUBJECT_ID = (
    "The id the event is about (workload, cluster or asset id): one NATS token of 1-128 "
    "characters A-Z a-z 0-9 _ -; the envelope's `subject` carries the same value."
)
EVENT_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["Nats-Msg-Id"],
    "properties": {
        "Nats-Msg-Id": {
            "type": "string",
            "description": "The event's `id`: JetStream drops a copy sent again within the "
            "duplicate window. Required on every publish.",
        },
        "traceparent": {
            "type": "string",
            "description": "W3C trace context of the event's trace (optional; the services "
            "continue it). The trace context is never in the payload.",
        },
        "tracestate": {"type": "string", "description": "W3C trace state (optional)."},
        "Authorization": {
            "type": "string",
            "description": "The bearer token of the person or application making the request "
            "(`Bearer <JWT>`). Required on every request a UI makes (events published by the "
            "ui role, and the queries it calls but health, the catalog's public key and the "
            "application token exchange): the serving service verifies it (signature against "
            "the issuer's keys, issuer, audience, expiry) and acts for the actor it proves, "
            "replacing any actor in the payload. A request without a valid token is refused "
            "with the reason: its rejection event, an ErrorReply with code unauthenticated, "
            "or a dead letter. Events of services carry none.",
        },
    },
}
REQUEST_HEADERS: dict[str, Any] = {
    "type": "object",
    "properties": {k: v for k, v in EVENT_HEADERS["properties"].items() if k != "Nats-Msg-Id"},
}
CORRELATION = {
    "location": "$message.payload#/correlationid",
    "description": "Id of the first event of the causal chain, in the envelope (never a "
    "header); absent on the first event, whose own `id` then correlates.",
}


def _roles_scheme(roles: Iterable[str]) -> list[dict[str, str]]:
    return [{"$ref": f"#/components/securitySchemes/{NKEY_SCHEME.format(role=r)}"} for r in roles]


def _security_schemes() -> dict[str, Any]:
    return {
        NKEY_SCHEME.format(role=role): {
            "type": "asymmetricEncryption",
            "description": f"The NATS nkey user of role `{role}` (Ed25519; the server sends a "
            "nonce the client signs with the role's seed). Its permissions are generated from "
            "the contracts: an operation lists the roles that may perform it.",
        }
        for role in ROLES
    }


def _event_of(address: str) -> type[Event] | None:
    prefix = address.rsplit(".", 1)[0]
    return next((e for e in Event.registry.values() if e.subject_prefix() == prefix), None)


def _models_of(rpc_models: dict[str, Any], address: str) -> Any:
    """The request and reply models of an rpc: a per-cluster subject (``....*``) is served
    under each cluster's own address."""
    if address in rpc_models:
        return rpc_models[address]
    rpc = _rpc_of(address)
    return next(models for served, models in rpc_models.items() if _rpc_of(served) is rpc)


def _rpc_of(address: str) -> Rpc | None:
    for rpc in RPCS:
        pattern = rpc.subject
        if pattern == address or (
            pattern.endswith(".*") and address.rsplit(".", 1)[0] == pattern[:-2]
        ):
            return rpc
    return None


def _producers(event: type[Event]) -> tuple[str, ...]:
    return event.PRODUCERS


def _consumers(event: type[Event]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r for c in event.CONSUMERS for r in c.roles))


def _add_schemas(doc: dict[str, Any], models: Iterable[type[BaseModel]]) -> None:
    unique = {m.__name__: m for m in models}
    _, top = models_json_schema(
        [(m, "validation") for m in unique.values()],
        ref_template="#/components/schemas/{model}",
    )
    schemas = doc["components"].setdefault("schemas", {})
    for name, schema in top.get("$defs", {}).items():
        schemas.setdefault(name, _asyncapi_schema(schema))


def _asyncapi_schema(node: Any) -> Any:
    """An AsyncAPI Schema Object names its discriminator by the property alone (OpenAPI's,
    which pydantic writes, is an object with a mapping)."""
    if isinstance(node, dict):
        out = {k: _asyncapi_schema(v) for k, v in node.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        return out
    if isinstance(node, list):
        return [_asyncapi_schema(v) for v in node]
    return node


def _phases() -> dict[str, Any]:
    return {
        "terminal": {kind: sorted(p) for kind, p in TERMINAL_PHASES_BY_KIND.items()},
        "settled": {kind: sorted(p) for kind, p in SETTLED_PHASES_BY_KIND.items()},
        "quotaFree": sorted(QUOTA_FREE_PHASES),
        "actionResults": dict(ACTION_RESULTS),
        "description": "terminal: nothing more happens after these, per kind; settled: where "
        "a submission gets by itself (terminal, or Running for kinds without an end); "
        "quotaFree: phases that hold none of the project's quota; actionResults: the phase an "
        "authorized action leads to.",
    }


def _event_channel(doc: dict[str, Any], channel: dict[str, Any]) -> None:
    address = channel["address"]
    event = _event_of(address)
    if event is None:
        return
    channel["x-stream"] = stream_for(address)
    channel["x-event-type"] = event.TYPE
    channel["x-event-version"] = event.VERSION
    if "{subject}" in address:
        channel["parameters"] = {"subject": {"description": SUBJECT_ID}}
    else:
        channel["x-subject-id"] = SUBJECT_ID
    if event.TYPE == "berth.workload.phase-changed":
        channel["x-phases"] = _phases()
    for ref in channel["messages"].values():
        message = doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
        message["headers"] = EVENT_HEADERS
        message["correlationId"] = CORRELATION
        message["contentType"] = "application/json"


def _rpc_channel(
    doc: dict[str, Any],
    op_name: str,
    channel: dict[str, Any],
    models: tuple[type[BaseModel], type[BaseModel] | None],
) -> None:
    request, reply = models
    for ref in channel["messages"].values():
        message = doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
        message["headers"] = REQUEST_HEADERS
        message.pop("correlationId", None)
        message["contentType"] = "application/json"
    answers = [m for m in (reply, ErrorReply) if m is not None]
    _add_schemas(doc, [request, *answers])
    reply_name = f"{op_name}:Reply"
    doc["components"]["messages"][reply_name] = {
        "title": reply_name,
        "name": reply.__name__ if reply else "ErrorReply",
        "contentType": "application/json",
        "payload": {"oneOf": [{"$ref": f"#/components/schemas/{m.__name__}"} for m in answers]},
        "description": "The answer, on the request's NATS reply subject (its inbox; core NATS "
        "request-reply, so the correlation is the reply subject, not a header or payload "
        "field). Any request may be answered with an ErrorReply (code bad-request, internal "
        "or unavailable).",
    }
    operation = doc["operations"][op_name]
    operation["reply"] = {"messages": [{"$ref": f"#/components/messages/{reply_name}"}]}


def enrich(doc: dict[str, Any], service: str | None, rpc_models: dict[str, Any]) -> dict[str, Any]:
    """Add to FastStream's document what a client in another language needs (see module doc)."""
    doc["components"]["securitySchemes"] = _security_schemes()
    doc["x-phases"] = _phases()
    for server in doc["servers"].values():
        server["security"] = _roles_scheme(ROLES)
    for op_name, operation in doc["operations"].items():
        channel_name = operation["channel"]["$ref"].rsplit("/", 1)[1]
        channel = doc["channels"][channel_name]
        address = channel["address"]
        if (rpc := _rpc_of(address)) is not None:
            _rpc_channel(doc, op_name, channel, _models_of(rpc_models, address))
            sender = operation["action"] == "send"
            operation["security"] = _roles_scheme(rpc.callers if sender else (rpc.server,))
            channel["x-served-by"] = rpc.server
            channel["x-callers"] = list(rpc.callers)
            continue
        event = _event_of(address)
        if event is None:
            continue
        _event_channel(doc, channel)
        roles = _producers(event) if operation["action"] == "send" else _consumers(event)
        operation["security"] = _roles_scheme(roles)
        channel["x-producers"] = list(_producers(event))
        channel["x-consumers"] = list(_consumers(event))
    if service is not None:
        _add_deadletters(doc, service)
    return doc


def _add_deadletters(doc: dict[str, Any], service: str) -> None:
    name = "deadletter"
    doc["channels"][name] = {
        "address": f"{deadletter(service)}.{{original}}",
        "title": name,
        "description": "Messages this service could not handle (after its retries) or could "
        "not send, set aside with the reason; `berth deadletter` lists, replays or discards "
        "them. The payload is the original message's, unchanged.",
        "parameters": {
            "original": {"description": "The original subject made one token (dots replaced)."}
        },
        "messages": {"DeadLetter": {"$ref": "#/components/messages/deadletter:DeadLetter"}},
        "x-stream": stream_for(deadletter(service)),
    }
    doc["components"]["messages"]["deadletter:DeadLetter"] = {
        "title": "deadletter:DeadLetter",
        "name": "DeadLetter",
        "payload": {"description": "The original message's bytes, unchanged."},
        "headers": {
            "type": "object",
            "required": [
                deadletters.ORIGINAL_SUBJECT,
                deadletters.REASON,
                deadletters.SERVICE,
                deadletters.AT,
                deadletters.ORIGIN,
            ],
            "properties": {
                deadletters.ORIGINAL_SUBJECT: {
                    "type": "string",
                    "description": "The subject the message was on (unicode-escaped when it "
                    "was not a valid subject).",
                },
                deadletters.ORIGINAL_MSG_ID: {
                    "type": "string",
                    "description": "Its Nats-Msg-Id, when it had one.",
                },
                deadletters.REASON: {
                    "type": "string",
                    "description": "Why, in words: a JSON string (at most 2000 characters).",
                },
                deadletters.SERVICE: {"type": "string", "description": "Who set it aside."},
                deadletters.AT: {"type": "string", "description": "When (ISO 8601, UTC)."},
                deadletters.ORIGIN: {
                    "type": "string",
                    "enum": ["consumer", "outbox"],
                    "description": "A message it received, or an outbox row it could not send.",
                },
                deadletters.TRUNCATED: {
                    "type": "string",
                    "description": "Set when the payload was cut to fit the stream's limit.",
                },
                "traceparent": EVENT_HEADERS["properties"]["traceparent"],
            },
            "description": "The original message's headers are kept too (its Nats-Msg-Id "
            f"moves to {deadletters.ORIGINAL_MSG_ID}).",
        },
    }
    doc["operations"]["deadletter"] = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{name}"},
        "messages": [{"$ref": f"#/channels/{name}/messages/DeadLetter"}],
        "security": _roles_scheme([service]),
    }


def role_document(role: str, rpc_models: dict[str, Any]) -> dict[str, Any]:
    """What one role (a UI) sends and receives, from the contracts alone: the events it
    publishes (``send``), the events it follows (``receive``), and the queries it may ask,
    with their replies."""
    doc: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"berth {role}",
            "version": "1.0.0",
            "description": f"Everything the `{role}` role may publish, follow and ask on the "
            "bus. Events are JSON CloudEvents envelopes (schemas in contracts/schemas); queries "
            "are core NATS request-reply.",
        },
        "defaultContentType": "application/json",
        "servers": {"development": {"host": "127.0.0.1:4222", "protocol": "nats", "pathname": ""}},
        "channels": {},
        "operations": {},
        "components": {"messages": {}, "schemas": {}},
    }
    events = sorted(Event.registry.values(), key=lambda e: (e.TYPE, e.VERSION))
    used: list[type[BaseModel]] = []
    for event in events:
        actions = []
        if role in event.PRODUCERS:
            actions.append("send")
        if role in _consumers(event):
            actions.append("receive")
        if not actions:
            continue
        name = event.subject_prefix()
        used.append(event)
        doc["channels"][name] = {
            "address": f"{name}.{{subject}}",
            "title": name,
            "description": (event.__doc__ or "").strip(),
            "messages": {"Message": {"$ref": f"#/components/messages/{name}:Message"}},
        }
        doc["components"]["messages"][f"{name}:Message"] = {
            "title": f"{name}:Message",
            "name": event.__name__,
            "payload": {"$ref": f"#/components/schemas/{event.__name__}"},
        }
        for action in actions:
            doc["operations"][f"{action}-{name}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{name}"},
                "messages": [{"$ref": f"#/channels/{name}/messages/Message"}],
            }
    for rpc in RPCS:
        if role not in rpc.callers:
            continue
        address = rpc.subject
        name = address
        doc["channels"][name] = {
            "address": address,
            "title": name,
            "messages": {"Request": {"$ref": f"#/components/messages/{name}:Request"}},
        }
        request = _models_of(rpc_models, address)[0]
        doc["components"]["messages"][f"{name}:Request"] = {
            "title": f"{name}:Request",
            "name": request.__name__,
            "payload": {"$ref": f"#/components/schemas/{request.__name__}"},
        }
        doc["operations"][name] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/Request"}],
        }
    _add_schemas(doc, used)
    enrich(doc, None, rpc_models)
    return doc


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report out-of-date documents")
    args = parser.parse_args(argv)
    stale = []
    for service in (*SERVICES, *ROLE_DOCUMENTS):
        path = OUT / f"{service}.json"
        text = render(document(service))
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
