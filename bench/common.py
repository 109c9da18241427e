"""What the berth benchmark and the bare baselines share, so that both are measured the same way.

* ``Recorder``: a core-NATS listener that notes, per workload id (the last subject token), when
  each stage's event arrived and when its service created it (the CloudEvents ``time``).
* ``measure``: publish N submissions in bounded chunks, show progress, wait for every workload to
  be Running, and summarise throughput, latencies and CPU per process.
* ``CpuSampler``: CPU seconds per process from ``/proc``, to see which process is saturated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

# The stages of a workload, in order. "requested" is noted by the publisher itself.
STAGES: tuple[str, ...] = (
    "requested",
    "received",
    "approved",
    "scheduled",
    "Creating",
    "Pending",
    "Initializing",
    "Running",
)
# Event subject prefix -> stage, for the events that mark one stage each.
EVENT_STAGES: dict[str, str] = {
    "submission.received.v1": "received",
    "policy.approved.v1": "approved",
    "workload.scheduled.v1": "scheduled",
}
PHASE_EVENT = "workload.phase-changed.v1"
PHASE_STAGES = frozenset({"Creating", "Pending", "Initializing", "Running"})
# Any of these for a benchmark workload fails the benchmark.
REJECTION_EVENTS: tuple[str, ...] = ("submission.rejected.v1", "policy.rejected.v1")
FAILED_PHASES = frozenset({"Failed"})
# Events on the bus per workload on the measured chain: the request and the 7 that follow it
# (counted as stages: berth may report several phases of a workload in one event).
EVENTS_PER_WORKLOAD = 8

# (label, from stage, to stage): which component each interval measures.
HOPS: tuple[tuple[str, str, str], ...] = (
    ("intake", "requested", "received"),
    ("policy", "received", "approved"),
    ("scheduler-adapter", "approved", "scheduled"),
    ("cluster: scheduled->Creating", "scheduled", "Creating"),
    ("cluster: Creating->Running", "Creating", "Running"),
    ("end to end", "requested", "Running"),
    # The spans the latency targets name, and the end-to-end figure split into what berth's
    # services take and what follows on the (simulated) cluster.
    ("submit -> approved", "requested", "approved"),
    ("submit -> scheduled", "requested", "scheduled"),
    ("cluster: scheduled->Running", "scheduled", "Running"),
)

# Keys looked up in the raw JSON: finding them is several times cheaper than json.loads, and
# the benchmark shares the two cores with everything it measures. Both services and the
# baseline write compact JSON with the envelope's "time" ahead of "data".
_TIME_KEY = b'"time":"'
_PHASE_KEY = b'"phase":"'
# A phase event that reports several transitions lists the earlier ones here.
_HISTORY_KEY = b'"history":[{'


class BenchFailure(RuntimeError):
    """The benchmark could not complete: a rejection, a failed workload or a timeout."""


def _field(data: bytes, key: bytes) -> str | None:
    start = data.find(key)
    if start < 0:
        return None
    start += len(key)
    end = data.find(b'"', start)
    return data[start:end].decode() if end > start else None


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


class Recorder:
    """First arrival (local clock) and creation time (envelope ``time``) of each workload stage.

    One core-NATS subscription per event type rather than ``*.*.*.*``: that wildcard would also
    receive every exported span on ``telemetry.spans.v1.<trace id>``.
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix  # "bare." for the baseline, whose subjects mirror berth's
        self.arrived: dict[str, dict[str, float]] = {}
        self.created: dict[str, dict[str, float]] = {}
        self.tracked: set[str] = set()
        self.counts: Counter[str] = Counter()
        self.failures: list[str] = []
        self.done = asyncio.Event()  # every tracked workload is Running
        self.failed = asyncio.Event()  # a tracked workload was rejected or failed
        self.messages = 0

    async def start(self, nc: Client) -> None:
        for event in (*EVENT_STAGES, PHASE_EVENT, *REJECTION_EVENTS):
            # Limits far above one run's volume: a dropped message would read as a stall.
            await nc.subscribe(
                f"{self.prefix}{event}.*",
                cb=self._on_msg,
                pending_msgs_limit=2_000_000,
                pending_bytes_limit=4 << 30,
            )
        await nc.flush()

    def track(self, ids: Iterable[str]) -> None:
        """Count (and wait for) these workloads from now on, and only these."""
        self.tracked = set(ids)
        self.counts = Counter()
        self.done.clear()
        self.failed.clear()
        self.failures = []
        for wid in self.tracked:
            for stage in self.arrived.get(wid, {}):
                self.counts[stage] += 1

    def sent(self, wid: str, at: float) -> None:
        self._mark(wid, "requested", at, at)

    async def _on_msg(self, msg: Msg) -> None:
        now = time.time()
        self.messages += 1
        event, _, wid = msg.subject[len(self.prefix) :].rpartition(".")
        data = msg.data
        created_raw = _field(data, _TIME_KEY)
        if event == PHASE_EVENT:
            if _HISTORY_KEY in data:
                # Each earlier transition is a stage reached, created at its own time; they all
                # arrive with this event.
                for transition in json.loads(data)["data"]["history"]:
                    if transition["phase"] in FAILED_PHASES:
                        self._fail(wid, f"{wid}: phase {transition['phase']}: {data[:600]!r}")
                        return
                    if transition["phase"] in PHASE_STAGES:
                        created = _parse_time(transition.get("time")) or now
                        self._mark(wid, transition["phase"], now, created)
            phase = _field(data, _PHASE_KEY)
            if phase is None or created_raw is None:
                decoded = json.loads(data)
                phase, created_raw = decoded["data"]["phase"], decoded.get("time")
            if phase in FAILED_PHASES:
                self._fail(wid, f"{wid}: phase {phase}: {data[:600]!r}")
                return
            if phase not in PHASE_STAGES:
                return
            stage = phase
        elif event in EVENT_STAGES:
            stage = EVENT_STAGES[event]
        else:
            self._fail(wid, f"{wid}: {event}: {data[:600]!r}")
            return
        if created_raw is None:
            created_raw = json.loads(data).get("time")
        self._mark(wid, stage, now, _parse_time(created_raw) or now)

    def _fail(self, wid: str, text: str) -> None:
        if wid in self.tracked:
            self.failures.append(text)
            self.counts["failed"] += 1
            self.failed.set()

    def _mark(self, wid: str, stage: str, arrived: float, created: float) -> None:
        stages = self.arrived.setdefault(wid, {})
        if stage in stages:
            return  # a redelivered or repeated event: the first one counts
        stages[stage] = arrived
        self.created.setdefault(wid, {})[stage] = created
        if wid in self.tracked:
            self.counts[stage] += 1
            if stage == "Running" and self.counts["Running"] >= len(self.tracked):
                self.done.set()


# --- statistics --------------------------------------------------------------------------------


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50 / p90 / p99 / max in milliseconds (nearest rank), and how many values there were."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000

    return {
        "n": len(ordered),
        "p50": round(rank(0.50), 1),
        "p90": round(rank(0.90), 1),
        "p99": round(rank(0.99), 1),
        "max": round(ordered[-1] * 1000, 1),
    }


def hop_latencies(
    times: dict[str, dict[str, float]], ids: Iterable[str]
) -> dict[str, dict[str, float]]:
    """Per hop, the distribution over workloads that reached both of its stages."""
    out: dict[str, dict[str, float]] = {}
    wids = list(ids)
    for label, first, second in HOPS:
        values = [
            t[second] - t[first]
            for wid in wids
            if (t := times.get(wid)) is not None and first in t and second in t
        ]
        out[label] = percentiles(values)
    return out


# --- CPU per process ---------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    return text[text.rindex(")") + 2 :].split()


def _cpu_seconds(fields: list[str]) -> float:
    # utime + stime (fields 14 and 15 of /proc/<pid>/stat), threads included.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


class CpuSampler:
    """Cumulative CPU seconds of named processes; a name may stand for a process and its children
    (PostgreSQL: the postmaster and a backend per connection).

    Every pid's last reading is kept, so a process that exits does not take its CPU time with it.
    """

    def __init__(
        self,
        pids: dict[str, int],
        trees: dict[str, int] | None = None,
        replicas: dict[str, list[int]] | None = None,
    ) -> None:
        self.pids = dict(pids)
        self.trees = dict(trees or {})
        # Further processes counted under a name of ``pids`` (the replicas of a service).
        self.replicas = dict(replicas or {})
        self._last: dict[int, tuple[str, float]] = {}

    def sample(self) -> dict[str, float]:
        members: list[tuple[str, int]] = list(self.pids.items())
        members.extend((name, pid) for name, pids in self.replicas.items() for pid in pids)
        for name, root in self.trees.items():
            members.append((name, root))
            members.extend((name, child) for child in _children(root))
        for name, pid in members:
            fields = _stat(pid)
            if fields is not None:
                self._last[pid] = (name, _cpu_seconds(fields))
        totals: dict[str, float] = dict.fromkeys([*self.pids, *self.trees], 0.0)
        for name, seconds in self._last.values():
            totals[name] = totals.get(name, 0.0) + seconds
        # Whatever else kept the machine's cores busy: a run beside other work is not comparable.
        totals[OTHER] = _machine_busy_seconds() - sum(totals.values())
        return totals


OTHER = "(other processes)"


def _machine_busy_seconds() -> float:
    # First line of /proc/stat: cpu user nice system idle iowait irq softirq steal ...
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / _TICKS


def postmaster_pid(data_dir: Path) -> int | None:
    """The PostgreSQL server's pid, from the first line of postmaster.pid in its data dir."""
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def child_named(comm: str) -> int | None:
    """A direct child of this process whose command name is ``comm`` (e.g. nats-server)."""
    for pid in _children(os.getpid()):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == comm:
                return pid
        except OSError:
            continue
    return None


# --- publishing and measuring ------------------------------------------------------------------

# (subject, payload, headers) of submission i, workload id wid
Build = Callable[[int, str], tuple[str, bytes, dict[str, str]]]


@dataclass
class Options:
    chunk: int = 500  # submissions whose acks are awaited together
    rate: float = 0.0  # submissions per second; 0 = as fast as JetStream acknowledges them
    timeout: float = 300.0  # seconds from the first publish until every workload must be Running
    # Give up early when no event at all arrived for this long: a consumer has stopped pulling.
    # Above JetStream's ack wait (30 s), so a lost delivery has the time to come back.
    stall: float = 60.0
    progress_every: float = 2.0
    quiet: bool = False
    # Before publishing, wait (at most idle_wait seconds) until the machine's cores are busy
    # less than idle_below % of one core: the host may be shared, and a run beside other work
    # measures that work too. 0 = start at once.
    idle_below: float = 30.0
    idle_wait: float = 180.0


@dataclass
class Measurement:
    """What ``measure`` returns, as plain data (written to JSON as it is)."""

    workloads: int
    running: int
    seconds: float
    publish_seconds: float
    stages: dict[str, int]
    latency_ms: dict[str, dict[str, dict[str, float]]]
    cpu_seconds: dict[str, float]
    missing_stages: dict[str, int] = field(default_factory=dict)

    @property
    def workloads_per_second(self) -> float:
        return self.running / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        per_workload = 1000 / self.workloads if self.workloads else 0.0
        return {
            "workloads": self.workloads,
            "running": self.running,
            "seconds": round(self.seconds, 3),
            "publish_seconds": round(self.publish_seconds, 3),
            "workloads_per_s": round(self.workloads_per_second, 1),
            "events_per_s": round(self.workloads_per_second * EVENTS_PER_WORKLOAD, 1),
            "stages": self.stages,
            "missing_stages": self.missing_stages,
            "latency_ms": self.latency_ms,
            "cpu_seconds": {k: round(v, 2) for k, v in self.cpu_seconds.items()},
            "cpu_percent_of_one_core": {
                k: round(100 * v / self.seconds, 1) if self.seconds else 0.0
                for k, v in self.cpu_seconds.items()
            },
            "cpu_ms_per_workload": {
                k: round(v * per_workload, 3) for k, v in self.cpu_seconds.items()
            },
        }


async def publish_all(
    js: JetStreamContext,
    ids: Sequence[str],
    build: Build,
    recorder: Recorder,
    options: Options,
) -> None:
    """Publish in chunks whose acks are awaited together: the number in flight stays bounded
    (below nats-py's publish_async limit of 4000), and a chunk is built right before it goes,
    so the envelope time of a submission is its publish time."""
    chunk = options.chunk
    if options.rate > 0:
        # Small chunks when paced: a 500-message burst every few seconds is not a rate.
        chunk = max(1, min(chunk, int(options.rate / 50)))
    start = time.monotonic()
    for first in range(0, len(ids), chunk):
        futures = []
        for i in range(first, min(len(ids), first + chunk)):
            subject, payload, headers = build(i, ids[i])
            recorder.sent(ids[i], time.time())
            futures.append(await js.publish_async(subject, payload, headers=headers))
        await asyncio.gather(*futures)
        if options.rate > 0:
            ahead = start + (first + chunk) / options.rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)


def _short(name: str) -> str:
    return {"scheduler-adapter": "adapter", "cluster-sync": "c-sync", OTHER: "other"}.get(
        name, name
    )


async def _progress(recorder: Recorder, cpu: CpuSampler, started: float, options: Options) -> None:
    last_cpu, last_t = cpu.sample(), time.monotonic()
    while True:
        await asyncio.sleep(options.progress_every)
        now_cpu, now_t = cpu.sample(), time.monotonic()
        span = max(now_t - last_t, 1e-6)
        busy = sorted(((now_cpu[k] - last_cpu.get(k, 0.0)) / span * 100, k) for k in now_cpu)[::-1]
        counts = recorder.counts
        stages = " ".join(
            f"{s[:4]} {counts[s]}" for s in STAGES if s not in ("Pending", "Initializing")
        )
        load = " ".join(f"{_short(k)} {pct:.0f}" for pct, k in busy if pct >= 1)
        failed = f" FAILED {counts['failed']}" if counts["failed"] else ""
        print(
            f"  {now_t - started:6.1f}s  {stages}{failed}  | CPU% {load}",
            flush=True,
        )
        last_cpu, last_t = now_cpu, now_t


async def wait_for_idle_machine(below: float, max_wait: float, quiet: bool) -> None:
    """Until the cores were busy less than ``below`` % of one core over 3 s, or ``max_wait``."""
    deadline = time.monotonic() + max_wait
    said = False
    while True:
        before = _machine_busy_seconds()
        await asyncio.sleep(3.0)
        busy = (_machine_busy_seconds() - before) / 3.0 * 100
        if busy < below:
            return
        if time.monotonic() >= deadline:
            if not quiet:
                print(f"  machine still busy ({busy:.0f}% of a core); starting anyway", flush=True)
            return
        if not said and not quiet:
            print(
                f"  waiting for other work on the machine to pause ({busy:.0f}% of a core busy)…",
                flush=True,
            )
            said = True


async def _wait(recorder: Recorder, deadline: float, stall: float) -> bool:
    """Until every tracked workload is Running, one failed, or ``deadline`` (monotonic) passed;
    True when it gave up because no event arrived for ``stall`` seconds."""
    seen, quiet_since = recorder.messages, time.monotonic()
    while not (recorder.done.is_set() or recorder.failed.is_set()):
        now = time.monotonic()
        if now >= deadline:
            return False
        if recorder.messages != seen:
            seen, quiet_since = recorder.messages, now
        elif now - quiet_since >= stall:
            return True
        # Woken at least once a second, to notice a failure, a stall or the deadline too.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder.done.wait(), timeout=min(1.0, deadline - now))
    return False


async def measure(
    js: JetStreamContext,
    recorder: Recorder,
    ids: Sequence[str],
    build: Build,
    cpu: CpuSampler,
    options: Options,
) -> Measurement:
    """Publish ``ids``, wait until each is Running, and summarise. ``recorder`` must be started."""
    if options.idle_below > 0:
        await wait_for_idle_machine(options.idle_below, options.idle_wait, options.quiet)
    recorder.track(ids)
    cpu_before = cpu.sample()
    started, t0 = time.monotonic(), time.time()
    progress = (
        None if options.quiet else asyncio.create_task(_progress(recorder, cpu, started, options))
    )
    try:
        await publish_all(js, ids, build, recorder, options)
        publish_seconds = time.time() - t0
        stalled = await _wait(recorder, started + options.timeout, options.stall)
    finally:
        if progress is not None:
            progress.cancel()
    cpu_after = cpu.sample()
    counts = dict(recorder.counts)
    stage_counts = {s: counts.get(s, 0) for s in STAGES}
    if recorder.failures:
        raise BenchFailure(
            f"{counts.get('failed', 0)} workload(s) rejected or failed; first: "
            f"{recorder.failures[0]}\nstages reached: {stage_counts}"
        )
    if not recorder.done.is_set():
        why = f"no event for {options.stall:.0f}s" if stalled else f"{options.timeout:.0f}s"
        raise BenchFailure(
            f"only {stage_counts['Running']} of {len(ids)} workloads Running after {why}; "
            f"stages reached: {stage_counts}"
        )
    last_running = max(recorder.arrived[wid]["Running"] for wid in ids)
    missing = {
        s: len(ids) - n for s, n in stage_counts.items() if n < len(ids) and s != "requested"
    }
    return Measurement(
        workloads=len(ids),
        running=stage_counts["Running"],
        seconds=last_running - t0,
        publish_seconds=publish_seconds,
        stages=stage_counts,
        missing_stages=missing,
        latency_ms={
            "arrival": hop_latencies(recorder.arrived, ids),
            "created": hop_latencies(recorder.created, ids),
        },
        cpu_seconds={k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after},
    )


async def wait_running(recorder: Recorder, wid: str, timeout: float) -> None:
    """Wait for one (warm-up) workload; raise with what is known if it does not get there."""
    recorder.track([wid])
    await _wait(recorder, time.monotonic() + timeout, timeout)
    if not recorder.done.is_set():
        reached = sorted(recorder.arrived.get(wid, {}), key=STAGES.index)
        detail = recorder.failures[0] if recorder.failures else f"stages reached: {reached}"
        raise BenchFailure(f"warm-up workload did not reach Running in {timeout:.0f}s; {detail}")


async def consumer_report(js: JetStreamContext, streams: Iterable[str]) -> str:
    """The state of every durable consumer, to tell a slow service from a stopped one: a
    consumer with deliveries awaiting their ack and no pull request waiting is not being
    pulled any more."""
    lines = [
        f"  {'consumer':32} {'pending':>8} {'ack pending':>11} {'redelivered':>11} {'waiting':>7}"
    ]
    for stream in streams:
        try:
            infos = await js.consumers_info(stream)
        except Exception as exc:
            lines.append(f"  {stream}: {exc}")
            continue
        for info in infos:
            lines.append(
                f"  {info.name:32} {info.num_pending or 0:>8} {info.num_ack_pending or 0:>11} "
                f"{info.num_redelivered or 0:>11} {info.num_waiting or 0:>7}"
            )
    return "\n".join(lines)


# --- reporting ---------------------------------------------------------------------------------


def format_latencies(latency_ms: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    lines = [
        f"  {'hop':30} {'arrival p50':>11} {'p99':>9}   {'created p50':>11} {'p99':>9}   n",
    ]
    for label, _, _ in HOPS:
        a = latency_ms["arrival"].get(label, {})
        c = latency_ms["created"].get(label, {})
        nan = float("nan")
        lines.append(
            f"  {label:30} {a.get('p50', nan):>9.1f}ms {a.get('p99', nan):>7.1f}ms"
            f"   {c.get('p50', nan):>9.1f}ms {c.get('p99', nan):>7.1f}ms   {a.get('n', 0)}"
        )
    return lines


def format_cpu(result: dict[str, Any]) -> list[str]:
    pct = result["cpu_percent_of_one_core"]
    per = result["cpu_ms_per_workload"]
    lines = [f"  {'process':20} {'CPU % of a core':>15} {'CPU ms/workload':>16}"]
    for name in sorted(pct, key=lambda k: -pct[k]):
        lines.append(f"  {name:20} {pct[name]:>15.1f} {per[name]:>16.3f}")
    return lines


def noise_warning(result: dict[str, Any], limit: float = 20.0) -> str | None:
    """A warning when other work on the machine took a noticeable share of its CPU."""
    busy = result.get("cpu_percent_of_one_core", {}).get(OTHER, 0.0)
    if busy < limit:
        return None
    return (
        f"WARNING: other processes kept {busy:.0f}% of a core busy during this run; "
        "its figures are not comparable with a run on a quiet machine"
    )


def format_measurement(title: str, result: dict[str, Any]) -> str:
    lines = [
        f"{title}: {result['running']}/{result['workloads']} Running in {result['seconds']:.2f}s"
        f" -> {result['workloads_per_s']:.1f} workloads/s ({result['events_per_s']:.0f} events/s);"
        f" all published in {result['publish_seconds']:.2f}s",
    ]
    if warning := noise_warning(result):
        lines.append(f"  {warning}")
    if result.get("missing_stages"):
        lines.append(f"  never seen (skipped phases): {result['missing_stages']}")
    lines.append("  latency per hop (arrival: local clock; created: envelope time of the events)")
    lines.extend(format_latencies(result["latency_ms"]))
    lines.extend(format_cpu(result))
    return "\n".join(lines)
