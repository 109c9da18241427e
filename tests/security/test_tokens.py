"""Who is acting, against the suite on the generated permissions: a request from a UI without
a valid bearer token is refused with the reason named (its rejection event, an error reply,
or a dead letter; never a silent drop), and a valid token's identity replaces whatever actor
the payload claims."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.msg import Msg

from berth.cli import dev_issuer
from berth.cli.suite import Suite
from berth.contracts.envelope import Actor, Event
from berth.contracts.events import (
    ClusterConfigRequestedData,
    ClusterConfigRequestedV1,
    ClusterSettings,
    SubmissionRequestedData,
    SubmissionRequestedV1,
    WorkloadActionData,
    WorkloadActionRequestedV1,
)
from berth.contracts.queries import ErrorReply, WorkloadListReply, WorkloadQuery
from berth.contracts.subjects import RPC_WORKLOADS_LIST, deadletter
from berth.shared.bus import encode, event_headers
from berth.shared.deadletters import ORIGINAL_SUBJECT, REASON
from berth.shared.identity import SigningKey, bearer_headers
from tests.identity import key_file, token_for
from tests.integration.shared.helpers import eventually
from tests.security.conftest import Session
from tests.security.test_bus_permissions import OpenSession, submission

ALICE = Actor(email="alice@example.com", groups=("team-a",))
MALLORY = Actor(email="mallory@example.com")


def bad_tokens(tmp_path: Path) -> dict[str, tuple[str | None, str]]:
    """Each way a token fails, and the words its refusal names."""
    other_key = SigningKey.ensure(tmp_path / "other.key")
    key = key_file()
    return {
        "none": (None, "no bearer token"),
        "expired": (
            dev_issuer.mint(key, ALICE.email, lifetime=60, now=time.time() - 7200),
            "token expired at",
        ),
        "other key": (
            other_key.mint(
                issuer=dev_issuer.ISSUER,
                audience="berth",
                subject=ALICE.email,
                lifetime=600,
                claims={"email": ALICE.email},
            ),
            "does not publish",
        ),
        "other audience": (
            dev_issuer.mint(key, ALICE.email, audience="grafana"),
            "audience 'grafana', not 'berth'",
        ),
        "other issuer": (
            dev_issuer.mint(key, ALICE.email, issuer="https://evil.example.com"),
            "issuer 'https://evil.example.com' is not trusted",
        ),
    }


class Answers:
    """Every event published on the subjects a UI follows, and dead letters, by subject id."""

    def __init__(self) -> None:
        self.by_subject: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    async def on_msg(self, msg: Msg) -> None:
        if msg.subject.startswith("deadletter."):
            original = (msg.headers or {}).get(ORIGINAL_SUBJECT, "")
            reason = json.loads((msg.headers or {}).get(REASON, '""'))
            self.by_subject.setdefault(original.rsplit(".", 1)[-1], []).append(
                ("deadletter", {"reason": reason})
            )
            return
        prefix = msg.subject.rsplit(".", 1)[0]
        self.by_subject.setdefault(msg.subject.rsplit(".", 1)[-1], []).append(
            (prefix, json.loads(msg.data))
        )

    async def first(self, subject_id: str, timeout: float = 30) -> tuple[str, dict[str, Any]]:
        found: list[tuple[str, dict[str, Any]]] = await eventually(
            lambda: self.by_subject.get(subject_id), timeout=timeout
        )
        return found[0]


@pytest.fixture
async def answers(as_role: OpenSession) -> AsyncIterator[Answers]:
    admin = await as_role("admin")
    watch = Answers()
    for subject in (
        "submission.received.v1.*",
        "submission.rejected.v1.*",
        "workload.action-denied.v1.*",
        f"{deadletter('cluster-sync')}.>",
    ):
        await admin.nc.subscribe(subject, cb=watch.on_msg)
    await admin.nc.flush()
    yield watch


async def send(ui: Session, event: Event, token: str | None) -> None:
    headers = event_headers(event) | bearer_headers(token)
    await ui.nc.jetstream().publish(event.subject_name, encode(event), headers=headers, timeout=5)


def submit_as(actor: Actor, name: str) -> SubmissionRequestedV1:
    return SubmissionRequestedV1(
        source="/berth/ui-tests",
        subject=str(uuid.uuid4()),
        actor=actor,
        data=SubmissionRequestedData(submission=submission(name)),
    )


async def test_each_bad_token_is_refused_by_name_on_every_path(
    secured_suite: Suite, as_role: OpenSession, answers: Answers, tmp_path: Path
) -> None:
    ui = await as_role("ui")
    for case, (token, words) in bad_tokens(tmp_path).items():
        # A submission: intake's rejection names the field and the reason.
        request = submit_as(ALICE, f"bad-{uuid.uuid4().hex[:6]}")
        await send(ui, request, token)
        prefix, data = await answers.first(request.subject)
        assert prefix == "submission.rejected.v1", case
        [issue] = data["data"]["issues"]
        assert issue["field"] == "authorization", case
        assert words in issue["details"] and "unauthenticated" in issue["details"], case
        # The refusal comes from intake, not in the name of whoever the payload claimed.
        assert data["actor"]["email"] == "system:intake", case

        # An action: ownership's denial gives the reason.
        action = WorkloadActionRequestedV1(
            source="/berth/ui-tests",
            subject=str(uuid.uuid4()),
            actor=ALICE,
            data=WorkloadActionData(action="delete", name="anything", project="team-a"),
        )
        await send(ui, action, token)
        prefix, data = await answers.first(action.subject)
        assert prefix == "workload.action-denied.v1", case
        assert words in data["data"]["reason"], case

        # A request with no rejection event of its own: a dead letter with the reason.
        config = ClusterConfigRequestedV1(
            source="/berth/ui-tests",
            subject="local",
            actor=ALICE,
            data=ClusterConfigRequestedData(
                clusterId="local", settings=ClusterSettings(workloadOwnershipProtection=True)
            ),
        )
        answers.by_subject.pop("local", None)
        await send(ui, config, token)
        prefix, data = await answers.first("local")
        assert prefix == "deadletter", case
        assert words in data["reason"], case

        # A query: an error reply naming the reason.
        headers = bearer_headers(token)
        msg = await ui.nc.request(
            RPC_WORKLOADS_LIST, WorkloadQuery().model_dump_json().encode(), 10, headers=headers
        )
        error = ErrorReply.model_validate_json(msg.data).error
        assert error.code == "unauthenticated", case
        assert words in error.message, case


async def test_the_verified_identity_replaces_the_claimed_actor(
    secured_suite: Suite, as_role: OpenSession, answers: Answers
) -> None:
    ui = await as_role("ui")
    # The administrator claims to be alice in the payload, with its own token: what is recorded
    # is who the token proves.
    owner = Actor(email="owner@example.com")
    forged = submit_as(ALICE, f"who-{uuid.uuid4().hex[:6]}")
    await send(ui, forged, token_for(owner))
    prefix, data = await answers.first(forged.subject)
    assert prefix == "submission.received.v1"
    assert data["actor"]["email"] == owner.email
    assert data["actor"]["kind"] == "user"
    assert data["data"]["workload"]["createdBy"] == owner.email

    # Queries too: the token works, a query without one does not.
    reply = await ui.nc.request(
        RPC_WORKLOADS_LIST,
        WorkloadQuery(project="team-a").model_dump_json().encode(),
        10,
        headers=bearer_headers(token_for(ALICE)),
    )
    names = [w.name for w in WorkloadListReply.model_validate_json(reply.data).workloads]
    assert forged.data.submission.name in names


async def test_health_and_the_sealing_key_need_no_token(
    secured_suite: Suite, as_role: OpenSession
) -> None:
    ui = await as_role("ui")
    health = await ui.nc.request("rpc.health.intake.v1", b"{}", 10)
    assert json.loads(health.data)["status"] in ("ok", "degraded")
    key = await ui.nc.request("rpc.catalog.keys.get.v1", b"{}", 10)
    assert "publicKey" in json.loads(key.data)["key"]


async def test_an_operator_and_the_services_need_no_token(
    secured_suite: Suite, as_role: OpenSession
) -> None:
    admin = await as_role("admin")
    reply = await admin.nc.request(
        RPC_WORKLOADS_LIST, WorkloadQuery().model_dump_json().encode(), 10
    )
    WorkloadListReply.model_validate_json(reply.data)
