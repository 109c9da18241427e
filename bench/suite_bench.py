"""Throughput and latency of the whole berth suite: N training submissions, from the request to
every workload Running on the simulated cluster.

The suite runs as in production (six service processes, NATS JetStream, PostgreSQL), on embedded
servers in a fresh temporary state directory. The simulated cluster is big enough for every
workload to run at once, and each workload runs for a very long (simulated) time, so what is
measured is the event chain

    submission.requested -> intake -> submission.received -> policy -> policy.approved
    -> scheduler-adapter -> workload.scheduled, phase Creating / Pending / Initializing / Running

and not the cluster's capacity. Run ``python -m bench.suite_bench --help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import yaml

from bench.common import (
    BenchFailure,
    Build,
    CpuSampler,
    Options,
    Recorder,
    child_named,
    consumer_report,
    format_measurement,
    measure,
    postmaster_pid,
    wait_running,
)
from berth.cli.suite import SERVICES, SIMULATOR_MODULE, Suite, service_of, simulator_service
from berth.contracts.envelope import Actor, RawEvent
from berth.contracts.events import SubmissionRequestedV1
from berth.contracts.roles import ADMIN
from berth.scheduler_adapter.labels import SIM_RUNTIME_ANNOTATION
from berth.shared.bus import encode, event_headers
from berth.shared.identity import bearer_headers

# The bench's one simulated cluster, profiled by this name as the services are by theirs.
SIMULATED = simulator_service("local")
PROFILED = (*sorted(SERVICES), SIMULATED)
PROJECT = "team-a"  # a project of the catalog's seed, whose default node pools are a100, default
IMAGE = "bench/train:1"
ACTOR = Actor(email="bench@berth.dev")
GPUS_PER_NODE = 8
DEFAULT_ENV = {"BERTH_LOG_LEVEL": "WARNING"}
# Streams whose consumers carry the measured chain, reported when a run fails.
WATCHED_STREAMS = ("SUBMISSION", "POLICY", "WORKLOAD")


def write_inventory(path: Path, workloads: int) -> dict[str, Any]:
    """A simulated cluster with a GPU for every workload (+10 %), in team-a's two node pools."""
    nodes = max(2, math.ceil((workloads + 1) * 1.1 / GPUS_PER_NODE))
    first = nodes // 2
    inventory = {
        "cluster": {},
        "nodePools": [
            {"name": "a100", "nodes": first, "gpusPerNode": GPUS_PER_NODE, "nodeType": "A100"},
            {
                "name": "default",
                "nodes": nodes - first,
                "gpusPerNode": GPUS_PER_NODE,
                "nodeType": "generic",
            },
        ],
    }
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    return inventory


class ProfiledSuite(Suite):
    """The suite with some services run under ``bench.profiled_service``: cProfile, switched on
    for the measured run only, writing ``<state dir>/profile-<service>.prof``."""

    def __init__(self, *args: Any, profile: set[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profile = profile

    def profile_path(self, name: str) -> Path:
        return self.state_dir / f"profile-{name}.prof"

    def start_service(self, name: str) -> None:
        if name not in self.profile:
            super().start_service(name)
            return
        # As Suite.start_service, with the module run by the profiling wrapper.
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115
        wrapper = [sys.executable, "-m", "bench.profiled_service"]
        if name in self.simulators:
            cluster = self.simulators[name]
            self.cluster_dir(cluster).mkdir(parents=True, exist_ok=True)
            self.kubeconfig(cluster).unlink(missing_ok=True)
            # The simulator's own arguments follow the wrapper's two.
            arguments = self._simulator_command(cluster)[3:]
            command = [*wrapper, SIMULATOR_MODULE, str(self.profile_path(name)), *arguments]
        else:
            command = [*wrapper, SERVICES[name], str(self.profile_path(name))]
        self.procs[name] = subprocess.Popen(
            command,
            env=self.env(name),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def profiling(self, on: bool) -> None:
        for name in self.profile:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)


def _area(filename: str, function: str) -> str:
    """Where a profiled function belongs: a package, berth's own code, or a kind of builtin."""
    if filename == "~":
        if "epoll" in function:
            return "(idle: waiting in epoll)"
        if "pydantic_core" in function:
            return "pydantic"
        if "socket" in function:
            return "socket send/recv"
        return "builtins"
    if "site-packages/" in filename:
        package = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        return package.removesuffix(".py").replace("pydantic_core", "pydantic")
    if "/berth/" in filename:
        return "berth (own code)"
    if "/lib/python3" in filename:
        rest = filename.split("/lib/python3", 1)[1].split("/", 1)[-1]
        return "stdlib " + rest.split("/", 1)[0].removesuffix(".py")
    return "other"


def print_profiles(suite: Suite, top: int = 25) -> None:
    """Per profiled service: own time by area (package), then the top functions."""
    if not isinstance(suite, ProfiledSuite):
        return
    for name in sorted(suite.profile):
        path = suite.profile_path(name)
        if not path.exists():
            print(f"no profile of {name}")
            continue
        stats = pstats.Stats(str(path))
        areas: dict[str, float] = {}
        for (filename, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
            areas[_area(filename, function)] = areas.get(_area(filename, function), 0.0) + row[2]
        total = sum(areas.values()) or 1.0
        print(f"--- {name}: own (wall-clock) time by area, {total:.1f}s profiled ({path})")
        for area, seconds in sorted(areas.items(), key=lambda kv: -kv[1])[:15]:
            print(f"  {area:34} {seconds:7.2f}s {100 * seconds / total:5.1f}%")
        out = io.StringIO()
        pstats.Stats(str(path), stream=out).sort_stats("tottime").print_stats(top)
        text = out.getvalue()
        start = text.find("   ncalls")  # drop pstats' preamble
        print(f"--- {name}: top {top} functions by own time\n{text[max(start, 0) :].rstrip()}")


def start_suite(
    state_dir: Path,
    workloads: int,
    *,
    sim_speed: float,
    extra_env: dict[str, str],
    quiet: bool = False,
    profile: set[str] | None = None,
    replicas: int = 1,
) -> Suite:
    inventory = state_dir / "inventory.yaml"
    write_inventory(inventory, workloads)
    # The bench submits as its own user: the installation's administrator.
    extra_env = {"BERTH_ADMIN": ACTOR.email, **extra_env}
    progress = (lambda _line: None) if quiet else (lambda line: print(line, flush=True))
    suite = (
        ProfiledSuite(
            state_dir,
            sim_speed=sim_speed,
            inventory=inventory,
            extra_env=extra_env,
            progress=progress,
            profile=profile,
            replicas=replicas,
        )
        if profile
        else Suite(
            state_dir,
            sim_speed=sim_speed,
            inventory=inventory,
            extra_env=extra_env,
            progress=progress,
            replicas=replicas,
        )
    )
    try:
        suite.start()
    except BaseException:
        suite.stop()
        raise
    return suite


def stop_services(suite: Suite) -> None:
    """Stop the six services but leave NATS and PostgreSQL running (for the baselines)."""
    for name in reversed(list(suite.procs)):
        suite.stop_service(name)


def suite_cpu(suite: Suite) -> CpuSampler:
    # A service's replicas count as the service: CPU per workload of the service as a whole.
    pids = {name: proc.pid for name, proc in suite.procs.items() if service_of(name) == name}
    replicas: dict[str, list[int]] = {}
    for name, proc in suite.procs.items():
        if service_of(name) != name:
            replicas.setdefault(service_of(name), []).append(proc.pid)
    nats_pid = child_named("nats-server")
    if nats_pid is not None:
        pids["nats-server"] = nats_pid
    pids["bench"] = os.getpid()
    trees = {}
    pg = postmaster_pid(suite.state_dir / "pg")
    if pg is not None:
        trees["postgres"] = pg
    return CpuSampler(pids, trees, replicas)


def submission_builder(runtime_seconds: float, token: str, name_prefix: str = "bench") -> Build:
    """The request the CLI would publish for
    ``berth submit training -p team-a --name bench-<i> -i bench/train:1 --gpu 1``, plus the
    simulated runtime annotation so that the workload stays Running; it carries the bearer
    token of the benchmark's user, which intake verifies on every submission."""
    annotations = [{"name": SIM_RUNTIME_ANNOTATION, "value": str(runtime_seconds)}]

    def build(i: int, wid: str) -> tuple[str, bytes, dict[str, str]]:
        event = RawEvent(
            source="/berth/bench",
            type=SubmissionRequestedV1.TYPE,
            version=SubmissionRequestedV1.VERSION,
            subject=wid,
            actor=ACTOR,
            data={
                "submission": {
                    "kind": "training",
                    "name": f"{name_prefix}-{i}",
                    "useGivenNameAsPrefix": False,
                    "projectId": PROJECT,
                    "spec": {
                        "image": IMAGE,
                        "compute": {"gpuDevicesRequest": 1},
                        "annotations": annotations,
                    },
                }
            },
        )
        headers = event_headers(event) | bearer_headers(token)
        return SubmissionRequestedV1.nats_subject(wid), encode(event), headers

    return build


async def bench_suite(
    suite: Suite,
    workloads: int,
    options: Options,
    *,
    runtime_seconds: float,
    warmup_timeout: float = 120.0,
    name_prefix: str = "bench",
) -> dict[str, Any]:
    """One warm-up workload (every consumer bound, caches filled), then the measured run;
    names start with ``name_prefix`` (unique per call: a live name cannot be given twice)."""
    # The operator's credential: the bench publishes submissions and watches every stage.
    nc = await suite.connect(ADMIN, name="berth-bench")
    try:
        js = nc.jetstream()
        recorder = Recorder()
        await recorder.start(nc)
        token = suite.token(ACTOR.email)
        build = submission_builder(runtime_seconds, token, name_prefix)
        warm_id = str(uuid4())
        warm_build = submission_builder(runtime_seconds, token, f"{name_prefix}-warmup")
        if not options.quiet:
            print("warm-up: one workload through the whole chain…", flush=True)
        await _publish_one(js, recorder, warm_build, warm_id)
        try:
            await wait_running(recorder, warm_id, warmup_timeout)
        except BenchFailure as exc:
            report = await consumer_report(js, WATCHED_STREAMS)
            raise BenchFailure(f"{exc}\nconsumers:\n{report}") from None
        ids = [str(uuid4()) for _ in range(workloads)]
        if not options.quiet:
            print(f"publishing {workloads} submissions…", flush=True)
        profiled = suite if isinstance(suite, ProfiledSuite) else None
        if profiled is not None:
            profiled.profiling(True)
        try:
            result = await measure(js, recorder, ids, build, suite_cpu(suite), options)
        except BenchFailure as exc:
            report = await consumer_report(js, WATCHED_STREAMS)
            raise BenchFailure(f"{exc}\nconsumers:\n{report}") from None
        finally:
            if profiled is not None:
                profiled.profiling(False)
        return result.as_dict()
    finally:
        await nc.close()


async def _publish_one(js: Any, recorder: Recorder, build: Build, wid: str) -> None:
    subject, payload, headers = build(0, wid)
    recorder.sent(wid, time.time())
    await js.publish(subject, payload, headers=headers)


def parse_env(pairs: list[str] | None) -> dict[str, str]:
    env = dict(DEFAULT_ENV)
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env takes KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workloads", "-n", type=int, default=5000, help="submissions to publish (default 5000)"
    )
    parser.add_argument(
        "--chunk",
        type=int,
        default=500,
        help="submissions published before their acks are awaited together; bounds the number "
        "in flight (default 500)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="pace the submissions at this many per second, for latency below saturation "
        "(default 0: as fast as JetStream acknowledges them)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds from the first publish until every workload must be Running; the run "
        "fails otherwise, naming how many reached each stage (default 300)",
    )
    parser.add_argument(
        "--stall",
        type=float,
        default=60.0,
        help="give up when no event at all arrived for this many seconds: a consumer stopped "
        "pulling; the failure lists every durable consumer's state (default 60)",
    )
    parser.add_argument(
        "--idle-below",
        type=float,
        default=30.0,
        help="before each measured run, wait until the machine's cores are busy less than this "
        "percentage of one core (other work on a shared host skews the figures); 0 = do not "
        "wait (default 30)",
    )
    parser.add_argument(
        "--idle-wait",
        type=float,
        default=180.0,
        help="seconds to wait at most for that, then start anyway (default 180)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress line every 2 s, only the summary"
    )


def add_suite_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sim-speed",
        type=float,
        default=1000.0,
        help="simulated cluster seconds per real second; 1000 makes the simulated startup of "
        "a pod (1 s) take 1 ms (default 1000)",
    )
    parser.add_argument(
        "--runtime",
        type=float,
        default=1e7,
        help="simulated seconds each workload runs (berth.dev/sim-runtime-seconds), long "
        "enough that none completes during the run (default 1e7)",
    )
    parser.add_argument(
        "--env",
        action="append",
        metavar="KEY=VALUE",
        help="extra environment of the services, repeatable, e.g. --env BERTH_BATCH_SIZE=512 "
        "--env BERTH_FETCH_TIMEOUT=0.01 --env BERTH_LOCAL_TRACES=false "
        "(BERTH_LOG_LEVEL=WARNING is always set unless overridden)",
    )
    parser.add_argument(
        "--profile",
        action="append",
        choices=PROFILED,
        metavar="SERVICE",
        help="profile this service (cProfile, during the measured run only; repeatable) and "
        "print where its time went; slows it down, so not for throughput figures "
        f"({', '.join(PROFILED)})",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        metavar="N",
        help="processes per service and per cluster's agent (default 1); their CPU is counted "
        "per service",
    )
    parser.add_argument(
        "--keep-state",
        action="store_true",
        help="keep the temporary state directory (service logs, databases) and print its path",
    )


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        chunk=args.chunk,
        rate=args.rate,
        timeout=args.timeout,
        stall=args.stall,
        quiet=args.quiet,
        idle_below=args.idle_below,
        idle_wait=args.idle_wait,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.suite_bench",
        description="Start the whole berth suite on embedded NATS and PostgreSQL, publish N "
        "training submissions (1 GPU each) and measure how fast they all become Running: "
        "throughput (first publish to the N-th Running event), end-to-end latency and the "
        "latency of each hop (intake, policy, scheduler-adapter, simulated cluster), and the "
        "CPU each process used. Exit status 1 when a workload is rejected or fails, or not "
        "all are Running within --timeout.",
    )
    add_common_options(parser)
    add_suite_options(parser)
    args = parser.parse_args(argv)
    return run_suite(args, lambda result: print(format_measurement("berth", result)))


def run_suite(args: argparse.Namespace, report: Callable[[dict[str, Any]], None]) -> int:
    """Start the suite in a fresh state directory, run the benchmark with the options of
    ``add_common_options``/``add_suite_options``, hand the result to ``report``, and stop the
    suite whatever happens (printing the profiles asked for). The state directory is removed
    after a successful run unless ``--keep-state``. Returns the exit status."""
    # `kill` stops the benchmark as cleanly as Ctrl-C: the suite is always stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    state_dir = Path(tempfile.mkdtemp(prefix="berth-bench-"))
    ok = False
    suite: Suite | None = None
    try:
        suite = start_suite(
            state_dir,
            args.workloads,
            sim_speed=args.sim_speed,
            extra_env=parse_env(args.env),
            quiet=args.quiet,
            profile=set(args.profile or ()),
            replicas=args.replicas,
        )
        result = asyncio.run(
            bench_suite(suite, args.workloads, options_from(args), runtime_seconds=args.runtime)
        )
        report(result)
        ok = True
    except BenchFailure as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
    finally:
        if suite is not None:
            suite.stop()
            print_profiles(suite)
        if ok and not args.keep_state:
            shutil.rmtree(state_dir, ignore_errors=True)
        else:
            print(f"state and service logs kept in {state_dir}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
