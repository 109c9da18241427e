"""The committed AsyncAPI documents are what the services actually do, and say everything a
client in another language needs: headers, correlation, parameters, replies, streams, phases,
dead letters and who may do what."""

from __future__ import annotations

import importlib.util
import json
import re
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from berth.contracts.envelope import Event
from berth.contracts.roles import ROLES, UI
from berth.contracts.rpc import RPCS
from berth.contracts.subjects import STREAMS, stream_for
from berth.contracts.workload import WORKLOAD_KINDS
from berth.shared import deadletters

ROOT = Path(__file__).resolve().parents[2]


@cache
def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "asyncapi_gen", ROOT / "contracts" / "scripts" / "asyncapi.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DOCUMENTS = sorted([*_generator().SERVICES, *_generator().ROLE_DOCUMENTS])


def _doc(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (ROOT / "contracts" / "asyncapi" / f"{name}.json").read_text()
    )
    return loaded


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _event_of(address: str) -> type[Event] | None:
    prefix = address.rsplit(".", 1)[0]
    return next((e for e in Event.registry.values() if e.subject_prefix() == prefix), None)


def _roles(operation: dict[str, Any]) -> set[str]:
    return {s["$ref"].rsplit("/", 1)[1].removeprefix("nkey-") for s in operation["security"]}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_committed_document_is_current(name: str) -> None:
    gen = _generator()
    committed = (ROOT / "contracts" / "asyncapi" / f"{name}.json").read_text()
    assert committed == gen.render(gen.document(name)), "run `make contracts`"


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_reference_resolves_and_every_parameter_is_declared(name: str) -> None:
    doc = _doc(name)
    assert doc["asyncapi"].startswith("3.")
    for ref in _refs(doc):
        _resolve(doc, ref)
    for channel in doc["channels"].values():
        for parameter in re.findall(r"\{([^}]+)\}", channel["address"]):
            assert parameter in channel.get("parameters", {}), channel["address"]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_event_messages_declare_headers_correlation_and_stream(name: str) -> None:
    doc = _doc(name)
    events = 0
    for channel in doc["channels"].values():
        event = _event_of(channel["address"])
        if event is None or channel["address"].startswith("rpc."):
            continue
        events += 1
        assert (
            channel["x-stream"] == stream_for(channel["address"]) and channel["x-stream"] in STREAMS
        )
        assert channel["x-event-type"] == event.TYPE
        for ref in channel["messages"].values():
            message = _resolve(doc, ref["$ref"])
            headers = message["headers"]
            assert headers["required"] == ["Nats-Msg-Id"]
            assert {"Nats-Msg-Id", "traceparent", "tracestate", "Authorization"} <= set(
                headers["properties"]
            )
            assert message["correlationId"]["location"] == "$message.payload#/correlationid"
    assert events > 0


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_request_has_its_reply_or_an_error_reply(name: str) -> None:
    doc = _doc(name)
    requests = 0
    for operation in doc["operations"].values():
        channel = _resolve(doc, operation["channel"]["$ref"])
        if not channel["address"].startswith("rpc."):
            continue
        requests += 1
        (reply,) = operation["reply"]["messages"]
        payload = _resolve(doc, reply["$ref"])["payload"]
        names = [_resolve(doc, o["$ref"]).get("title") for o in payload["oneOf"]]
        assert names[-1] == "ErrorReply"
        if not channel["address"].startswith("rpc.health."):
            assert len(names) == 2, channel["address"]
    assert requests > 0


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_operation_names_the_roles_that_may_perform_it(name: str) -> None:
    doc = _doc(name)
    schemes = doc["components"]["securitySchemes"]
    assert set(schemes) == {f"nkey-{role}" for role in ROLES}
    for op_name, operation in doc["operations"].items():
        channel = _resolve(doc, operation["channel"]["$ref"])
        roles = _roles(operation)
        assert roles, op_name
        event = _event_of(channel["address"])
        rpc = next((r for r in RPCS if r.subject.removesuffix(".*") in channel["address"]), None)
        if channel["address"].startswith("deadletter."):
            assert roles == {name}
        elif channel["address"].startswith("rpc."):
            assert rpc is not None
            assert roles == (set(rpc.callers) if operation["action"] == "send" else {rpc.server})
        else:
            assert event is not None
            if operation["action"] == "send":
                assert roles == set(event.PRODUCERS)
            else:
                assert roles == {r for c in event.CONSUMERS for r in c.roles}
        if name in _generator().SERVICES and operation["action"] == "send":
            assert name in roles, op_name


def test_the_ui_document_sends_what_uis_publish_and_asks_what_they_may() -> None:
    doc = _doc(UI)
    sends = {
        _resolve(doc, op["channel"]["$ref"])["address"]
        for op in doc["operations"].values()
        if op["action"] == "send"
    }
    published = {
        f"{e.subject_prefix()}.{{subject}}" for e in Event.registry.values() if UI in e.PRODUCERS
    }
    asked = {r.subject for r in RPCS if UI in r.callers}
    assert published and asked
    assert sends == published | asked
    assert "submission.requested.v1.{subject}" in sends


def test_phases_are_published_per_kind() -> None:
    phases = _doc("intake")["x-phases"]
    assert set(phases["terminal"]) == set(WORKLOAD_KINDS)
    assert "Completed" in phases["terminal"]["training"]
    assert "Running" in phases["settled"]["workspace"]
    assert phases["actionResults"]["suspend"] == "Stopped"
    assert "Stopped" in phases["quotaFree"]


@pytest.mark.parametrize("name", sorted(_generator().SERVICES))
def test_dead_letters_and_their_headers_are_declared(name: str) -> None:
    doc = _doc(name)
    channel = doc["channels"]["deadletter"]
    assert channel["address"] == f"deadletter.{name}.v1.{{original}}"
    assert channel["x-stream"] == "DEADLETTER"
    headers = _resolve(doc, channel["messages"]["DeadLetter"]["$ref"])["headers"]
    for header in (
        deadletters.ORIGINAL_SUBJECT,
        deadletters.ORIGINAL_MSG_ID,
        deadletters.REASON,
        deadletters.SERVICE,
        deadletters.AT,
        deadletters.ORIGIN,
        deadletters.TRUNCATED,
    ):
        assert header in headers["properties"]


def test_intake_documents_the_submission_it_consumes() -> None:
    doc = _doc("intake")
    assert doc["channels"]["intake-submissions"]["address"] == "submission.requested.v1.*"
    schemas = doc["components"]["schemas"]
    assert "SubmissionRequestedV1" in schemas
    assert "SubmissionReceivedV1" in schemas and "SubmissionRejectedV1" in schemas
    assert "WorkloadReply" in schemas and "ErrorReply" in schemas
