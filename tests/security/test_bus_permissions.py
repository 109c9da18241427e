"""Forgeries on the bus, replayed against the suite on the generated accounts and permissions.

Each forgery was possible on an anonymous, permission-less NATS. Now an anonymous connection is
refused at connect; a ``ui`` connection (what any UI or CLI user holds) and a service of the
wrong role get a permissions violation, and the forged message never reaches its stream, so no
service can act on it; a permitted role spoofing another's ``source`` is dead-lettered.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import pytest
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig
from nats.js.errors import NotFoundError
from pydantic import TypeAdapter

from berth.cli.embedded import EmbeddedNats
from berth.cli.suite import Suite
from berth.contracts.envelope import Actor, Event
from berth.contracts.events import (
    ClusterConfigDesiredV1,
    ClusterConfigRequestedData,
    ClusterSettings,
    PolicyApprovedData,
    PolicyApprovedV1,
    SubmissionRequestedData,
    SubmissionRequestedV1,
    WorkloadActionAuthorizedData,
    WorkloadActionAuthorizedV1,
    WorkloadPhaseChangedData,
    WorkloadPhaseChangedV1,
    WorkloadRef,
)
from berth.contracts.queries import (
    ProjectLookupReply,
    WorkloadQuery,
    WorkloadReply,
    WorkloadView,
)
from berth.contracts.subjects import (
    RPC_CATALOG_PROJECTS_LOOKUP,
    RPC_WORKLOADS_GET,
    deadletter,
)
from berth.contracts.workload import WorkloadSubmission
from berth.shared.bus import encode, event_headers
from berth.shared.identity import bearer_headers
from tests.identity import token_for
from tests.integration.shared.helpers import eventually
from tests.security.conftest import Session

SUBMISSION: TypeAdapter[WorkloadSubmission] = TypeAdapter(WorkloadSubmission)
OWNER = Actor(email="owner@example.com")
ATTACKER = Actor(email="attacker@example.com")
OpenSession = Callable[[str], Awaitable[Session]]


def submission(name: str, *, host_root: bool = False) -> WorkloadSubmission:
    spec: dict[str, Any] = {
        "image": "pytorch/pytorch",
        "compute": {"gpuDevicesRequest": 1},
        # Long enough to stay Running for the whole test.
        "annotations": [{"name": "berth.dev/sim-runtime-seconds", "value": "100000"}],
    }
    if host_root:
        spec["storage"] = {"hostPath": [{"name": "root", "path": "/", "mountPath": "/host"}]}
    return SUBMISSION.validate_python(
        {"kind": "training", "name": name, "projectId": "team-a", "spec": spec}
    )


def ref(workload_id: str, name: str, namespace: str = "runai-team-a") -> WorkloadRef:
    return WorkloadRef(
        workloadId=workload_id,
        name=name,
        kind="training",
        project="team-a",
        clusterId="local",
        namespace=namespace,
        queue="team-a",
        createdBy=ATTACKER.email,
    )


async def publish(session: Session, event: Event) -> bool:
    """JetStream-publish as ``session``; True when the stream acknowledged it."""
    try:
        # With a token proving the event's actor: what is tested here is the bus permissions.
        headers = event_headers(event) | bearer_headers(token_for(event.actor))
        await session.nc.jetstream().publish(
            event.subject_name, encode(event), headers=headers, timeout=3
        )
    except NatsTimeout:
        return False  # the server dropped it: no stream ever acknowledges
    return True


async def stored(admin: JetStreamContext, stream: str, event: Event) -> bool:
    """Whether the stream holds ``event`` (as the last message on its subject)."""
    try:
        msg = await admin.get_last_msg(stream, event.subject_name)
    except NotFoundError:
        return False
    return bool(json.loads(msg.data or b"{}").get("id") == str(event.id))


async def view(session: Session, name: str) -> WorkloadView | None:
    msg = await session.nc.request(
        RPC_WORKLOADS_GET,
        WorkloadQuery(project="team-a", name=name, actor=OWNER).model_dump_json().encode(),
        timeout=10,
        headers=bearer_headers(token_for(OWNER)),
    )
    return WorkloadReply.model_validate_json(msg.data).workload


async def submit(ui: Session, name: str) -> str:
    workload_id = str(uuid.uuid4())
    event = SubmissionRequestedV1(
        source="/berth/ui-tests",
        subject=workload_id,
        actor=OWNER,
        data=SubmissionRequestedData(submission=submission(name)),
    )
    assert await publish(ui, event), "ui may submit"
    return workload_id


async def running(ui: Session, name: str) -> WorkloadView:
    async def phase() -> WorkloadView | None:
        found = await view(ui, name)
        return found if found and found.phase == "Running" else None

    found: WorkloadView = await eventually(phase, timeout=60, interval=0.2)
    return found


@pytest.fixture
async def admin(as_role: OpenSession) -> JetStreamContext:
    return (await as_role("admin")).nc.jetstream()


# --- connecting --------------------------------------------------------------------------------


async def test_an_anonymous_connection_is_refused(secured_nats: EmbeddedNats) -> None:
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(
            secured_nats.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=5
        )


async def test_a_key_that_is_not_a_role_is_refused(
    secured_nats: EmbeddedNats, tmp_path: Any
) -> None:
    import os

    import nkeys

    seed = tmp_path / "stranger.nk"
    seed.write_bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(
            secured_nats.url,
            nkeys_seed=str(seed),
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=5,
        )


# --- forgeries -----------------------------------------------------------------------------------


async def test_ui_cannot_forge_an_approval(
    secured_suite: Suite, as_role: OpenSession, admin: JetStreamContext
) -> None:
    ui = await as_role("ui")
    workload_id, name = str(uuid.uuid4()), f"never-{uuid.uuid4().hex[:6]}"
    forged = PolicyApprovedV1(
        source="/berth/policy",
        subject=workload_id,
        actor=ATTACKER,
        data=PolicyApprovedData(
            workload=ref(workload_id, name, namespace="kube-system"),
            effectiveSpec=submission(name, host_root=True),
        ),
    )
    assert not await publish(ui, forged)
    await ui.violation(f'publish to "{forged.subject_name}"')
    assert not await stored(admin, "POLICY", forged)
    assert await view(ui, name) is None


async def test_ui_cannot_forge_an_authorized_action_or_a_phase(
    secured_suite: Suite, as_role: OpenSession, admin: JetStreamContext
) -> None:
    ui = await as_role("ui")
    name = f"victim-{uuid.uuid4().hex[:6]}"
    workload_id = await submit(ui, name)
    await running(ui, name)

    delete = WorkloadActionAuthorizedV1(
        source="/berth/ownership",
        subject=workload_id,
        actor=ATTACKER,
        data=WorkloadActionAuthorizedData(
            action="delete", name=name, project="team-a", workload=ref(workload_id, name)
        ),
    )
    failed = WorkloadPhaseChangedV1(
        source="/berth/scheduler-adapter",
        subject=workload_id,
        actor=ATTACKER,
        data=WorkloadPhaseChangedData(
            workload=ref(workload_id, name), phase="Failed", previousPhase="Running"
        ),
    )
    for forged in (delete, failed):
        assert not await publish(ui, forged)
        await ui.violation(f'publish to "{forged.subject_name}"')
        assert not await stored(admin, "WORKLOAD", forged)
    # Still running, never deleted nor failed.
    after = await view(ui, name)
    assert after is not None and after.phase == "Running"
    assert not {p.phase for p in after.phases} & {"Failed", "Deleting", "Deleted"}


async def test_ui_cannot_send_a_cluster_its_desired_config(
    secured_suite: Suite, as_role: OpenSession, admin: JetStreamContext
) -> None:
    ui = await as_role("ui")
    forged = ClusterConfigDesiredV1(
        source="/berth/cluster-sync",
        subject="local",
        actor=ATTACKER,
        data=ClusterConfigRequestedData(
            clusterId="local", settings=ClusterSettings(workloadOwnershipProtection=False)
        ),
    )
    assert not await publish(ui, forged)
    await ui.violation('publish to "cluster.config-desired.v1.local"')
    assert not await stored(admin, "CLUSTER", forged)


async def test_no_fake_responder_and_no_reading_everything(
    secured_suite: Suite, as_role: OpenSession
) -> None:
    ui = await as_role("ui")
    policy = await as_role("policy")
    answered: list[Any] = []

    async def redirect(msg: Any) -> None:
        answered.append(msg)
        await msg.respond(b'{"projects": {}}')

    for session in (ui, policy):
        await session.nc.subscribe(RPC_CATALOG_PROJECTS_LOOKUP, cb=redirect)
        await session.nc.flush()
        await session.violation(f'subscription to "{RPC_CATALOG_PROJECTS_LOOKUP}"')
    seen: list[Any] = []

    async def spy(msg: Any) -> None:
        seen.append(msg)

    for pattern in (">", "submission.>", "_INBOX_intake.>"):
        await ui.nc.subscribe(pattern, cb=spy)
        await ui.nc.flush()
        await ui.violation(f'subscription to "{pattern}"')

    # Submissions still resolve through the real catalog, and nobody else read them.
    name = f"routed-{uuid.uuid4().hex[:6]}"
    await submit(ui, name)
    routed = await running(ui, name)
    assert routed.project == "team-a"
    assert answered == [] and seen == []
    # The real catalog answers the lookup ui may ask.
    reply = await ui.nc.request(
        RPC_CATALOG_PROJECTS_LOOKUP,
        b'{"items": [{"project": "team-a"}]}',
        timeout=10,
        headers=bearer_headers(token_for(OWNER)),
    )
    assert "team-a" in ProjectLookupReply.model_validate_json(reply.data).projects


async def test_ui_reads_spans_but_creates_no_consumer(
    secured_suite: Suite, as_role: OpenSession
) -> None:
    ui = await as_role("ui")
    # A push consumer would deliver the spans a UI may write to any subject it names.
    with pytest.raises(NatsTimeout):
        await ui.nc.jetstream().add_consumer(
            "TELEMETRY",
            ConsumerConfig(
                deliver_subject="policy.approved.v1.x", filter_subject="telemetry.spans.v1.x"
            ),
            timeout=3,
        )
    await ui.violation('publish to "$JS.API.CONSUMER.CREATE.TELEMETRY')
    # What `berth trace` does instead: the stream's get API.
    subject = f"telemetry.spans.v1.{uuid.uuid4().hex}"
    await ui.nc.publish(subject, b'[{"name": "span"}]')
    await ui.nc.flush()

    async def stored_span() -> Any:
        try:
            return await ui.nc.jetstream().get_msg("TELEMETRY", seq=1, subject=subject, next=True)
        except NotFoundError:
            return None

    msg = await eventually(stored_span, timeout=10)
    assert json.loads(msg.data or b"[]") == [{"name": "span"}]


async def test_a_service_cannot_forge_another_services_events(
    secured_suite: Suite, as_role: OpenSession, admin: JetStreamContext
) -> None:
    intake = await as_role("intake")
    ownership = await as_role("ownership")
    workload_id, name = str(uuid.uuid4()), f"forged-{uuid.uuid4().hex[:6]}"
    approved = PolicyApprovedV1(
        source="/berth/policy",
        subject=workload_id,
        actor=ATTACKER,
        data=PolicyApprovedData(
            workload=ref(workload_id, name, namespace="kube-system"),
            effectiveSpec=submission(name, host_root=True),
        ),
    )
    assert not await publish(intake, approved)
    await intake.violation(f'publish to "{approved.subject_name}"')
    assert not await stored(admin, "POLICY", approved)
    phase = WorkloadPhaseChangedV1(
        source="/berth/scheduler-adapter",
        subject=workload_id,
        actor=ATTACKER,
        data=WorkloadPhaseChangedData(workload=ref(workload_id, name), phase="Failed"),
    )
    assert not await publish(ownership, phase)
    await ownership.violation(f'publish to "{phase.subject_name}"')
    assert not await stored(admin, "WORKLOAD", phase)


async def test_a_spoofed_source_is_dead_lettered(
    secured_suite: Suite, as_role: OpenSession, admin: JetStreamContext
) -> None:
    ui = await as_role("ui")
    name = f"spoofed-{uuid.uuid4().hex[:6]}"
    workload_id = await submit(ui, name)
    await running(ui, name)
    # The scheduler-adapter may publish phase changes, but not in ownership's name.
    adapter = await as_role("scheduler-adapter")
    spoofed = WorkloadPhaseChangedV1(
        source="/berth/ownership",
        subject=workload_id,
        actor=ATTACKER,
        data=WorkloadPhaseChangedData(
            workload=ref(workload_id, name), phase="Failed", previousPhase="Running"
        ),
    )
    assert await publish(adapter, spoofed)
    dead_subject = f"{deadletter('intake')}.{spoofed.subject_name.replace('.', '_')}"

    async def dead_letter() -> Any:
        try:
            return await admin.get_last_msg("DEADLETTER", dead_subject)
        except NotFoundError:
            return None

    letter = await eventually(dead_letter, timeout=30, interval=0.2)
    assert json.loads(letter.data)["id"] == str(spoofed.id)
    reason = json.loads(letter.headers["Berth-Reason"])
    assert "/berth/ownership" in reason and "may not emit" in reason
    after = await view(ui, name)
    assert after is not None and after.phase == "Running"


async def test_ui_may_do_what_uis_do(secured_suite: Suite, as_role: OpenSession) -> None:
    ui = await as_role("ui")
    name = f"allowed-{uuid.uuid4().hex[:6]}"
    received: asyncio.Queue[str] = asyncio.Queue()

    async def follow(msg: Any) -> None:
        received.put_nowait(msg.subject.rsplit(".", 1)[0])

    workload_id = str(uuid.uuid4())
    await ui.nc.subscribe(f"submission.received.v1.{workload_id}", cb=follow)
    await ui.nc.subscribe(f"workload.phase-changed.v1.{workload_id}", cb=follow)
    await ui.nc.flush()
    event = SubmissionRequestedV1(
        source="/berth/ui-tests",
        subject=workload_id,
        actor=OWNER,
        data=SubmissionRequestedData(submission=submission(name)),
    )
    assert await publish(ui, event)
    assert await asyncio.wait_for(received.get(), 30) == "submission.received.v1"
    await running(ui, name)
    assert ui.errors == []
