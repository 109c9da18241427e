"""Every event survives a trip through JSON unchanged, whatever it carries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from berth.contracts.envelope import Actor, Event, event_class
from berth.contracts.events import (
    PolicyApprovedV1,
    SubmissionReceivedV1,
    SubmissionRequestedV1,
)
from berth.contracts.registry import ALL_EVENTS
from berth.contracts.workload import WorkloadSubmission

pytestmark = pytest.mark.unit

WORKLOAD_REF = {
    "workloadId": "0b0e9a52-3c4a-4f55-8b43-5f1d3a0d2a11",
    "name": "jupyter-1",
    "kind": "workspace",
    "project": "team-a",
    "department": "research",
    "clusterId": "c1",
    "namespace": "runai-team-a",
    "queue": "team-a",
    "createdBy": "alice@example.com",
}

SUBMISSION_EVENTS: dict[type[Event], str] = {
    SubmissionRequestedV1: "submission",
    SubmissionReceivedV1: "submission",
    PolicyApprovedV1: "effectiveSpec",
}


def minimal(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """The smallest value a schema accepts: required fields only, first choice of every union."""
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [b for b in schema[key] if b.get("type") != "null"] or schema[key]
            return minimal(branches[0], root)
    kind = schema.get("type", "object")
    if kind == "object":
        return {
            name: minimal(schema["properties"][name], root) for name in schema.get("required", [])
        }
    if kind == "array":
        return [minimal(schema["items"], root)] if "items" in schema else []
    if kind == "string":
        if schema.get("format") == "uuid":
            return "9f1c3a8e-0000-4000-8000-000000000001"
        if schema.get("format") == "date-time":
            return "2025-01-01T00:00:00Z"
        return "x"
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}[kind]


def sample_data(event: type[Event], submission: dict[str, Any]) -> dict[str, Any]:
    data_schema = event.model_json_schema()
    data = minimal(data_schema["properties"]["data"], data_schema)
    assert isinstance(data, dict)
    if "workload" in data:
        data["workload"] = WORKLOAD_REF
    if event in SUBMISSION_EVENTS:
        data[SUBMISSION_EVENTS[event]] = submission
    return data


def make_event(event: type[Event], submission: dict[str, Any]) -> Event:
    return event.model_validate(
        {
            "source": "/berth/test",
            "subject": "0b0e9a52-3c4a-4f55-8b43-5f1d3a0d2a11",
            "actor": Actor(email="alice@example.com", groups=("team-a",)),
            "data": sample_data(event, submission),
        }
    )


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: f"{e.TYPE}.v{e.VERSION}")
def test_every_event_round_trips_through_json(
    event: type[Event], sample_submissions: dict[str, dict[str, Any]]
) -> None:
    original = make_event(event, sample_submissions["workspace"])
    text = original.model_dump_json()

    decoded = event_class(original.type, original.version).model_validate_json(text)

    assert type(decoded) is event
    assert decoded == original
    assert decoded.model_dump_json() == text


@pytest.mark.parametrize("event", list(SUBMISSION_EVENTS), ids=lambda e: e.TYPE)
@pytest.mark.parametrize("kind", ["workspace", "training", "distributed", "inference"])
def test_submission_events_round_trip_every_kind(
    event: type[Event], kind: str, sample_submissions: dict[str, dict[str, Any]]
) -> None:
    original = make_event(event, sample_submissions[kind])

    decoded = event.model_validate_json(original.model_dump_json())

    assert decoded == original
    submission = getattr(decoded.data, SUBMISSION_EVENTS[event])
    assert submission.kind == kind


@pytest.mark.parametrize("kind", ["workspace", "training", "distributed", "inference"])
def test_submission_json_keeps_exactly_what_was_sent(
    kind: str, sample_submissions: dict[str, dict[str, Any]]
) -> None:
    adapter = TypeAdapter(WorkloadSubmission)
    payload = sample_submissions[kind]

    submission = adapter.validate_json(json.dumps(payload))
    dumped = adapter.dump_python(submission, mode="json", exclude_none=True)

    # Unset fields stay unset: only the sender's fields (plus envelope defaults) come back.
    assert dumped["spec"] == json.loads(json.dumps(payload["spec"]))
    assert adapter.validate_json(adapter.dump_json(submission)) == submission


def test_every_event_type_and_version_is_unique() -> None:
    keys = [(event.TYPE, event.VERSION) for event in ALL_EVENTS]
    assert len(keys) == len(set(keys))
