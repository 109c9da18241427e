"""Fault runs against the whole suite: paced training submissions, faults injected on a schedule
while they flow, and an account of what became of every submission, read back afterwards from
the streams (every event the services published) and from intake's read model.

The account counts, per submitted workload: recorded (one ``submission.received``), Completed
(one ``Completed`` phase), terminal events (``Completed`` or ``Failed``: exactly one), and run
twice (the cluster started it again: a second ``Running``, or a start phase after the first
``Running``). Recovery time of a fault: from the fault (the kill; the end of an outage) until
the processes it hit answer their health check again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import uuid4

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from bench.suite_bench import ACTOR, submission_builder
from berth.cli.suite import Suite
from berth.contracts.queries import HealthReply, WorkloadListReply, WorkloadQuery
from berth.contracts.roles import ADMIN
from berth.contracts.subjects import RPC_WORKLOADS_LIST, rpc_health
from berth.shared.bus import connect

T = TypeVar("T")

PROJECT = "team-a"  # a project of the catalog's seed
START_PHASES = frozenset({"Creating", "Pending", "Initializing"})
TERMINAL_PHASES = frozenset({"Completed", "Failed"})


def drive(suite: Suite, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` in a thread of its own while this thread supervises the suite, as
    ``berth up`` does: a process the supervisor restarts is a child of the thread that started
    the suite (on Linux a child is told to end when that thread ends)."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(asyncio.run, work())  # type: ignore[arg-type]
        suite.supervise(until=future.done, interval=0.1)
        return future.result()


@dataclass
class Fault:
    label: str
    at: float  # seconds after the first submission
    inject: Callable[[], Awaitable[None]]  # returns when the fault is over
    hits: tuple[str, ...]  # the services that must answer their health check again


@dataclass
class Account:
    submitted: int
    recorded: int
    completed: int
    lost: list[str]
    duplicated: list[str]
    run_twice: list[str]
    rejected: list[str]
    recovery: dict[str, float]
    seconds: float
    notes: list[str] = field(default_factory=list)

    def report(self, title: str) -> str:
        lines = [
            f"{title}: submitted {self.submitted}, recorded {self.recorded}, "
            f"Completed {self.completed}, lost {len(self.lost)}, duplicated "
            f"{len(self.duplicated)}, run twice {len(self.run_twice)}, rejected "
            f"{len(self.rejected)}; {self.seconds:.1f}s",
        ]
        lines += [f"  recovery after {label}: {s:.2f}s" for label, s in self.recovery.items()]
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)


class StreamTail:
    """Every message of one stream under a subject filter, from a sequence on, in order.

    Read with a short-lived consumer per pass, made again from the next sequence after any
    error, so that nothing is missed across a NATS restart."""

    def __init__(self, js: JetStreamContext, stream: str, subject: str) -> None:
        self.js = js
        self.stream = stream
        self.subject = subject
        self.next_seq = 1
        self.messages: list[tuple[str, dict[str, Any]]] = []  # (subject, decoded envelope)

    async def mark(self) -> None:
        """Read only what is stored from now on."""
        info = await self.js.stream_info(self.stream)
        self.next_seq = info.state.last_seq + 1

    async def poll(self) -> None:
        with contextlib.suppress(Exception):
            info = await self.js.add_consumer(
                self.stream,
                ConsumerConfig(
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                    opt_start_seq=self.next_seq,
                    ack_policy=AckPolicy.NONE,
                    filter_subject=self.subject,
                    inactive_threshold=10.0,
                    mem_storage=True,
                ),
            )
            psub = await self.js.pull_subscribe_bind(consumer=info.name, stream=self.stream)
            try:
                while True:
                    try:
                        batch = await psub.fetch(1000, timeout=0.5)
                    except TimeoutError:
                        return
                    for msg in batch:
                        self.messages.append((msg.subject, json.loads(msg.data)))
                        self.next_seq = msg.metadata.sequence.stream + 1
                    if batch[-1].metadata.num_pending == 0:
                        return
            finally:
                with contextlib.suppress(Exception):
                    await psub.unsubscribe()
                with contextlib.suppress(Exception):
                    await self.js.delete_consumer(self.stream, info.name)


class FaultRun:
    def __init__(
        self,
        suite: Suite,
        *,
        label: str,
        count: int = 1000,
        rate: float = 50.0,
        runtime_seconds: float = 40.0,
        timeout: float = 180.0,
    ) -> None:
        self.suite = suite
        self.label = label
        self.count = count
        self.rate = rate
        self.build = submission_builder(
            runtime_seconds, suite.token(ACTOR.email), name_prefix=label
        )
        self.timeout = timeout
        self.ids = [str(uuid4()) for _ in range(count)]
        self.names = {wid: f"{label}-{i}" for i, wid in enumerate(self.ids)}
        self.recovery: dict[str, float] = {}

    async def run(self, faults: list[Fault]) -> Account:
        nc = await connect(
            self.suite.nats_url,
            name="berth-faults",
            credentials=self.suite.credentials(ADMIN),
            role=ADMIN,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
        )
        try:
            js = nc.jetstream()
            tails = {
                "received": StreamTail(js, "SUBMISSION", "submission.received.v1.*"),
                "rejected": StreamTail(js, "SUBMISSION", "submission.rejected.v1.*"),
                "denied": StreamTail(js, "POLICY", "policy.rejected.v1.*"),
                "phases": StreamTail(js, "WORKLOAD", "workload.phase-changed.v1.*"),
            }
            for tail in tails.values():
                await tail.mark()
            started = time.monotonic()
            await asyncio.gather(self._submit(js, started), self._faults(nc, faults, started))
            await self._until_finished(tails["phases"], started)
            for tail in tails.values():
                await tail.poll()
            account = self._account(tails, time.monotonic() - started)
            await self._check_read_model(nc, account)
            return account
        finally:
            await nc.close()

    async def _submit(self, js: JetStreamContext, started: float) -> None:
        for i, wid in enumerate(self.ids):
            delay = started + i / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            subject, payload, headers = self.build(i, wid)
            # Until stored: across a NATS restart the same message (same Nats-Msg-Id) is sent
            # again, and the stream keeps one copy.
            while True:
                try:
                    await js.publish(subject, payload, headers=headers, timeout=2)
                    break
                except Exception:
                    await asyncio.sleep(0.1)

    async def _faults(self, nc: Client, faults: list[Fault], started: float) -> None:
        for fault in faults:
            delay = started + fault.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await fault.inject()
            over = time.monotonic()
            for name in fault.hits:
                while not await _healthy(nc, name):
                    if time.monotonic() - over > 120:
                        raise AssertionError(f"{name} not back 120s after {fault.label}")
                    await asyncio.sleep(0.05)
            self.recovery[fault.label] = time.monotonic() - over

    async def _until_finished(self, phases: StreamTail, started: float) -> None:
        while True:
            await phases.poll()
            finished = {
                m["subject"] for _s, m in phases.messages if m["data"]["phase"] in TERMINAL_PHASES
            }
            if finished >= set(self.ids):
                return
            if time.monotonic() - started > self.timeout:
                return  # the account names what is missing
            await asyncio.sleep(0.5)

    def _account(self, tails: dict[str, StreamTail], seconds: float) -> Account:
        tracked = set(self.ids)
        received: Counter[str] = Counter()
        event_ids: Counter[str] = Counter()
        phases: dict[str, list[str]] = defaultdict(list)
        rejected: list[str] = []
        for key, tail in tails.items():
            for _subject, event in tail.messages:
                wid = event["subject"]
                if wid not in tracked:
                    continue
                event_ids[event["id"]] += 1
                if key == "received":
                    received[wid] += 1
                elif key == "phases":
                    history = event["data"].get("history") or []
                    phases[wid].extend([*(t["phase"] for t in history), event["data"]["phase"]])
                else:
                    rejected.append(wid)
        terminal = {wid: [p for p in seen if p in TERMINAL_PHASES] for wid, seen in phases.items()}
        completed = [wid for wid in self.ids if terminal.get(wid) == ["Completed"]]
        lost = [wid for wid in self.ids if not received[wid] or not terminal.get(wid)]
        duplicated = sorted(
            {wid for wid, n in received.items() if n > 1}
            | {wid for wid, t in terminal.items() if len(t) > 1}
        )
        twice = [wid for wid in self.ids if _ran_twice(phases.get(wid, []))]
        account = Account(
            submitted=len(self.ids),
            recorded=sum(1 for wid in self.ids if received[wid]),
            completed=len(completed),
            lost=lost,
            duplicated=duplicated,
            run_twice=twice,
            rejected=rejected,
            recovery=dict(self.recovery),
            seconds=seconds,
        )
        copies = [event_id for event_id, n in event_ids.items() if n > 1]
        if copies:
            account.notes.append(f"{len(copies)} events stored twice, e.g. {copies[:3]}")
            account.duplicated.extend(copies)
        for wid in twice[:3]:
            account.notes.append(f"run twice: {self.names[wid]}: {' '.join(phases[wid])}")
        for wid in lost[:3]:
            account.notes.append(
                f"lost: {self.names[wid]}: received {received[wid]}, phases "
                f"{' '.join(phases.get(wid, [])) or 'none'}"
            )
        return account

    async def _check_read_model(self, nc: Client, account: Account) -> None:
        """Intake's read model lists each workload once, under its name."""
        names: Counter[str] = Counter()
        offset: int | None = 0
        while offset is not None:
            query = WorkloadQuery(project=PROJECT, limit=1000, offset=offset, actor=ACTOR)
            msg = await nc.request(RPC_WORKLOADS_LIST, query.model_dump_json().encode(), timeout=10)
            reply = WorkloadListReply.model_validate_json(msg.data)
            names.update(w.name for w in reply.workloads if w.workloadId in self.names)
            offset = reply.nextOffset
        listed = set(names)
        missing = [wid for wid, name in self.names.items() if name not in listed]
        twice = [name for name, n in names.items() if n > 1]
        if missing:
            account.notes.append(f"{len(missing)} workloads missing from the read model")
            account.lost.extend(w for w in missing if w not in account.lost)
        if twice:
            account.notes.append(f"{len(twice)} names listed twice in the read model")
            account.duplicated.extend(twice)


def _ran_twice(phases: list[str]) -> bool:
    if phases.count("Running") > 1:
        return True
    if "Running" in phases:
        return any(p in START_PHASES for p in phases[phases.index("Running") :])
    return False


async def _healthy(nc: Client, service: str) -> bool:
    try:
        reply = await nc.request(rpc_health(service), b"{}", timeout=0.5)
        HealthReply.model_validate_json(reply.data)
    except Exception:
        return False
    return True
