"""A request from a UI whose sender is not authenticated is answered by its own rejection event
(or, with none, left to a dead letter): every request type the ui role publishes is covered."""

from __future__ import annotations

import pytest

from berth.contracts.catalog import AssetRequestedData, CatalogAssetRequestedV1
from berth.contracts.envelope import Actor, Event, RawEvent
from berth.contracts.events import (
    ClusterConfigRequestedData,
    ClusterConfigRequestedV1,
    ClusterSettings,
    SubmissionRequestedV1,
    WorkloadActionData,
    WorkloadActionRequestedV1,
)
from berth.contracts.policy import PolicyChangeRequestedData, PolicyChangeRequestedV1, PolicyMeta
from berth.contracts.registry import ALL_EVENTS
from berth.contracts.roles import UI

pytestmark = pytest.mark.unit

CLAIMED = Actor(email="mallory@example.com")
SERVICE = Actor.system("intake")
REASON = "unauthenticated: token expired at 2026-11-30T18:10:17+00:00"


def refused(request: Event, declared: type[Event] | None = None) -> Event | None:
    cls = declared or type(request)
    return cls.refused(request, REASON, source="/berth/intake", actor=SERVICE)


def test_a_submission_kept_raw_gets_a_rejection_naming_authorization() -> None:
    request = RawEvent(
        source="/berth/ui",
        type=SubmissionRequestedV1.TYPE,
        version=1,
        subject="w1",
        actor=CLAIMED,
        data={"submission": {"kind": "training", "name": "n", "projectId": "p"}, "dryRun": True},
    )
    answer = refused(request, SubmissionRequestedV1)
    assert answer is not None and answer.type == "berth.submission.rejected"
    assert (answer.subject, answer.causationid, answer.actor) == ("w1", request.id, SERVICE)
    assert (answer.data.name, answer.data.project, answer.data.kind) == ("n", "p", "training")
    assert answer.data.dryRun is True
    assert [(i.field, i.details) for i in answer.data.issues] == [("authorization", REASON)]


def test_actions_assets_and_policies_get_their_rejections() -> None:
    action = WorkloadActionRequestedV1(
        source="/berth/ui",
        subject="w1",
        actor=CLAIMED,
        data=WorkloadActionData(action="delete", name="n", project="p"),
    )
    denied = refused(action)
    assert denied is not None and denied.type == "berth.workload.action-denied"
    assert denied.data.reason == REASON

    asset = CatalogAssetRequestedV1(
        source="/berth/ui",
        subject="r1",
        actor=CLAIMED,
        data=AssetRequestedData(operation="create", kind="environment", name="env"),
    )
    rejected = refused(asset)
    assert rejected is not None and rejected.type == "berth.catalog.asset-rejected"
    assert (rejected.data.kind, rejected.data.name, rejected.data.reason) == (
        "environment",
        "env",
        REASON,
    )

    policy = PolicyChangeRequestedV1(
        source="/berth/ui",
        subject="p1",
        actor=CLAIMED,
        data=PolicyChangeRequestedData(
            action="delete", type="training", meta=PolicyMeta(scope="tenant")
        ),
    )
    change = refused(policy)
    assert change is not None and change.type == "berth.policy.change-rejected"
    assert change.data.issues[0].details == REASON


def test_a_request_without_a_rejection_event_is_left_to_a_dead_letter() -> None:
    config = ClusterConfigRequestedV1(
        source="/berth/ui",
        subject="local",
        actor=CLAIMED,
        data=ClusterConfigRequestedData(clusterId="local", settings=ClusterSettings()),
    )
    assert refused(config) is None


def test_every_ui_request_is_known_here() -> None:
    ui_requests = {e for e in ALL_EVENTS if UI in e.PRODUCERS}
    assert ui_requests == {
        SubmissionRequestedV1,
        WorkloadActionRequestedV1,
        CatalogAssetRequestedV1,
        PolicyChangeRequestedV1,
        ClusterConfigRequestedV1,
    }
