"""Every bad input, sent the way a broken or hostile client would, against the whole suite: each
gets a named rejection (field, value, reason) or a dead letter with its reason, and the next
good submission still flows (nothing is blocked). Then the lifecycle: a name stays with its
live workload, and impossible actions are refused at once without touching the history."""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from nats.aio.msg import Msg
from nats.js.errors import NoStreamResponseError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from berth.cli.suite import Suite
from berth.contracts.queries import ErrorReply
from berth.contracts.roles import ADMIN
from berth.contracts.subjects import RPC_WORKLOADS_GET
from berth.shared.deadletters import ORIGINAL_SUBJECT, REASON
from berth.shared.identity import bearer_headers
from tests.e2e.conftest import Cli, grant
from tests.identity import token_for
from tests.integration.shared.helpers import eventually

pytestmark = pytest.mark.e2e

REQUESTED = "submission.requested.v1"
NAN, INF = float("nan"), float("inf")


def good(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "submission": {
            "kind": "training",
            "name": name,
            "projectId": "team-a",
            "spec": {"image": "busybox", "compute": {"gpuDevicesRequest": 1}, **spec},
        }
    }


def envelope(subject: str, data: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "source": "/tests/hostile",
        "type": "berth.submission.requested",
        "version": 1,
        "subject": subject,
        "actor": {"email": "mallory@example.com"},
        "data": data,
        **overrides,
    }


@dataclass
class Watch:
    """What the services publish in answer: received/rejected per workload id, dead letters per
    original subject (core NATS sees every JetStream publish)."""

    outcomes: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    dead: dict[str, str] = field(default_factory=dict)

    async def on_outcome(self, msg: Msg) -> None:
        prefix, _, wid = msg.subject.rpartition(".")
        self.outcomes[wid] = (prefix, json.loads(msg.data)["data"])

    async def on_dead(self, msg: Msg) -> None:
        headers = msg.headers or {}
        self.dead[headers.get(ORIGINAL_SUBJECT, "")] = json.loads(headers.get(REASON, '""'))


@asynccontextmanager
async def watching(suite: Suite) -> AsyncIterator[tuple[Any, Watch]]:
    # With the admin credential: the bus permissions would stop most of these at the door;
    # what is tested here is what the services do with whatever gets through.
    nc = await suite.connect(ADMIN, name="hostile-client")
    watch = Watch()
    await nc.subscribe("submission.received.v1.*", cb=watch.on_outcome)
    await nc.subscribe("submission.rejected.v1.*", cb=watch.on_outcome)
    await nc.subscribe("deadletter.>", cb=watch.on_dead)
    try:
        yield nc, watch
    finally:
        await nc.close()


async def send(
    nc: Any, subject: str, body: dict[str, Any] | bytes, msg_id: str | None = None
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body, allow_nan=True).encode()
    # A logged-in user sending bad input: what is refused here is the input, not who sent it.
    headers = {"Nats-Msg-Id": msg_id or uuid.uuid4().hex} | bearer_headers(
        token_for("hostile@example.com")
    )
    await nc.jetstream().publish(subject, raw, headers=headers, timeout=10)


def wid() -> str:
    return uuid.uuid4().hex


SIM_RUNTIME = "berth.dev/sim-runtime-seconds"
COMPUTE = "spec.compute"
# (label, submission data, field named, words in the reason)
REJECTED: list[tuple[str, dict[str, Any], str, str]] = [
    ("NaN", good("nan", compute={"cpuCoreRequest": NAN}), f"{COMPUTE}.cpuCoreRequest", "finite"),
    ("Infinity", good("inf", compute={"cpuCoreRequest": INF}), f"{COMPUTE}.cpuCoreRequest", "finite"),  # noqa: E501
    ("NUL", good("nul", command="run\x00this"), "spec.command", "NUL"),
    ("10^40 GPUs", good("many", compute={"gpuDevicesRequest": 10**40}), f"{COMPUTE}.gpuDevicesRequest", "too large"),  # noqa: E501
    ("65 GPUs", good("more", compute={"gpuDevicesRequest": 65}), f"{COMPUTE}.gpuDevicesRequest", "limit of 64"),  # noqa: E501
    ("label value", good("lbl", labels=[{"name": "Team", "value": "ML Ops"}]), "spec.labels.0.value", "label value"),  # noqa: E501
    ("env name", good("env", environmentVariables=[{"name": "1BAD", "value": "x"}]), "spec.environmentVariables.0.name", "environment variable"),  # noqa: E501
    ("node pool", good("pool", nodePools=["no-such-pool"]), "spec.nodePools.0", "does not exist"),
    ("sim runtime NaN", good("simnan", annotations=[{"name": SIM_RUNTIME, "value": "nan"}]), "spec.annotations.0.value", "number of seconds"),  # noqa: E501
    ("900 KB", good("huge", command="x" * 900_000), "submission", "limit is 262144"),
]  # fmt: skip


def dead_cases() -> list[tuple[str, str, dict[str, Any], str]]:
    """(label, NATS subject token, envelope, words in the dead letter's reason)"""
    cases = []
    for label, subject in [
        ("newline", "x\n"),
        ("space", "a b"),
        ("wildcard", "x.>"),
        ("empty", ""),
    ]:
        token = wid()
        cases.append((label, token, envelope(subject, good(f"d-{token[:6]}")), "subject id"))
    token = wid()
    cases.append(
        ("another subject", token, envelope(wid(), good("other")), "differs from the subject")
    )
    token = wid()
    cases.append(
        (
            "unknown type",
            token,
            envelope(token, good("bogus"), type="berth.submission.bogus"),
            "does not belong",
        )
    )
    token = wid()
    cases.append(("version 7", token, envelope(token, good("seven"), version=7), "does not belong"))
    return cases


async def test_every_bad_input_is_named_and_nothing_is_blocked(cli: Cli, suite: Suite) -> None:
    # The sender may submit anywhere: what is refused here is the input, not who sent it.
    grant(cli, "hostile@example.com", "System administrator")
    async with watching(suite) as (nc, watch):
        # Named rejections.
        sent: dict[str, tuple[str, str, str]] = {}
        for label, data, field_, words in REJECTED:
            token = wid()
            await send(nc, f"{REQUESTED}.{token}", envelope(token, data))
            sent[token] = (label, field_, words)
        for token, (label, field_, words) in sent.items():
            prefix, data = await eventually(
                functools.partial(watch.outcomes.get, token), timeout=60
            )
            assert prefix == "submission.rejected.v1", (label, data)
            assert any(i["field"] == field_ and words in i["details"] for i in data["issues"]), (
                label,
                data["issues"],
            )

        # Dead letters with their reason.
        letters = dead_cases()
        for _, token, body, _ in letters:
            await send(nc, f"{REQUESTED}.{token}", body)
        for label, token, _, words in letters:
            reason = await eventually(
                functools.partial(watch.dead.get, f"{REQUESTED}.{token}"), timeout=60
            )
            assert words in reason, (label, reason)
            assert token not in watch.outcomes, label

        # A forged approval whose subject is no subject id: the scheduler-adapter sets it aside.
        forged = wid()
        await send(
            nc,
            f"policy.approved.v1.{forged}",
            envelope("evil one", {}, type="berth.policy.approved"),
        )
        reason = await eventually(
            lambda: watch.dead.get(f"policy.approved.v1.{forged}"), timeout=60
        )
        assert "subject id" in reason

        # An unknown version is refused by the stream at once, not stored for nobody.
        token = wid()
        with pytest.raises(NoStreamResponseError):
            await send(nc, f"submission.requested.v2.{token}", envelope(token, good("v2")))

        # The same workload id with another content; the same event id for another workload.
        first = wid()
        original = envelope(first, good(f"orig-{first[:6]}"))
        await send(nc, f"{REQUESTED}.{first}", original)
        prefix, _ = await eventually(lambda: watch.outcomes.get(first), timeout=60)
        assert prefix == "submission.received.v1"
        watch.outcomes.pop(first)
        await send(nc, f"{REQUESTED}.{first}", envelope(first, good(f"other-{first[:6]}")))
        prefix, data = await eventually(lambda: watch.outcomes.get(first), timeout=60)
        assert prefix == "submission.rejected.v1"
        assert "already used by a different submission" in data["issues"][0]["details"]
        second = wid()
        reused = envelope(second, good(f"reuse-{second[:6]}"), id=original["id"])
        await send(nc, f"{REQUESTED}.{second}", reused)
        reason = await eventually(lambda: watch.dead.get(f"{REQUESTED}.{second}"), timeout=60)
        assert "already used for another content" in reason

        # A malformed request gets an answer naming what is wrong.
        reply = await nc.request(RPC_WORKLOADS_GET, b"{not json", timeout=10)
        error = ErrorReply.model_validate_json(reply.data).error
        assert error.code == "bad-request" and error.issues

        # Nothing is blocked: the next good submission goes all the way.
        done = cli.run(
            "submit", "training", "-p", "team-a", "--name", "after-bad", "-i", "busybox",
            "--gpu", "1", "--wait",
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Completed" in done.stdout

    # And the services say they set something aside (dead letters are an operator's matter).
    admin = Cli({**cli.env, "BERTH_NATS_CREDENTIALS": str(suite.credentials(ADMIN))})
    status = admin.run("status")
    assert "degraded" in status.stdout and "intake" in status.stdout, status.stdout
    listed = admin.json("deadletter", "list", "--service", "intake")
    assert len(listed) >= len(letters) + 1
    assert all(d["reason"] and d["subject"] and d["at"] for d in listed)

    # The operator has read them and discards them: the suite the other tests share is healthy
    # again (`berth status` exits non-zero while a service is degraded).
    for letter in admin.json("deadletter", "list"):
        done = admin.run("deadletter", "discard", str(letter["seq"]))
        assert done.returncode == 0, done.stdout + done.stderr
    assert admin.run("status").returncode == 0


async def _phase_seen_by_ownership(database_url: str, name: str, phase: str) -> None:
    """Ownership judges actions by the phase intake answers it (intake's read model): wait
    until intake has recorded this one."""
    engine = create_async_engine(database_url)
    try:

        async def recorded() -> bool:
            async with engine.connect() as conn:
                found = await conn.scalar(
                    text(
                        "SELECT phase FROM intake.workloads "
                        "WHERE name = :n AND status NOT IN ('rejected', 'Deleted')"
                    ),
                    {"n": name},
                )
            return bool(found == phase)

        await eventually(recorded, timeout=60, interval=0.1)
    finally:
        await engine.dispose()


def _refused_at_once(cli: Cli, *args: str, reason: str) -> None:
    start = time.monotonic()
    done = cli.run(*args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert reason in done.stderr, done.stderr
    assert time.monotonic() - start < 60  # not the 120 s wait of an action that never ends


async def test_names_stay_with_live_workloads_and_impossible_actions_are_refused(
    cli: Cli, suite: Suite
) -> None:
    submit = ["submit", "training", "-p", "team-a", "--name", "life-train", "-i", "busybox"]
    done = cli.run(*submit, "--gpu", "1", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    live = cli.json("describe", "life-train", "-p", "team-a")

    # The README's quick start run twice: the duplicate is rejected and never takes the name.
    again = cli.run(*submit, "--wait")
    said = again.stdout + again.stderr
    assert again.returncode == 1 and "already exists" in said, said
    assert cli.json("describe", "life-train", "-p", "team-a")["workloadId"] == live["workloadId"]
    # A workload id is accepted where a name is.
    by_id = cli.json("describe", live["workloadId"], "-p", "team-a")
    assert by_id["name"] == "life-train"

    await _phase_seen_by_ownership(suite.database_url, "life-train", "Completed")
    _refused_at_once(
        cli, "suspend", "life-train", "-p", "team-a",
        reason="cannot suspend a workload that is Completed",
    )  # fmt: skip
    after = cli.json("describe", "life-train", "-p", "team-a")
    assert [p["phase"] for p in after["phases"]] == [p["phase"] for p in live["phases"]]

    ws = ["submit", "workspace", "-p", "team-a", "--name", "life-ws", "-i", "jupyter"]
    done = cli.run(*ws, "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    await _phase_seen_by_ownership(suite.database_url, "life-ws", "Running")
    _refused_at_once(
        cli, "resume", "life-ws", "-p", "team-a",
        reason="only a Stopped workload can be resumed",
    )  # fmt: skip
    stopped = cli.run("suspend", "life-ws", "-p", "team-a")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    await _phase_seen_by_ownership(suite.database_url, "life-ws", "Stopped")
    _refused_at_once(
        cli, "suspend", "life-ws", "-p", "team-a",
        reason="cannot suspend a workload that is Stopped",
    )  # fmt: skip

    inf = ["submit", "inference", "-p", "team-a", "--name", "life-inf", "-i", "vllm"]
    done = cli.run(*inf, "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    _refused_at_once(
        cli, "suspend", "life-inf", "-p", "team-a",
        reason="inference workloads cannot be suspended",
    )  # fmt: skip
