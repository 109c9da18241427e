"""Cold start of each service: ``kill -9`` of its process in an idle suite (as ``berth up`` runs
it: embedded nats-server and PostgreSQL, supervised), then the time until it answers its health
query again, split by its log: the process started again, its first log line, its "started"
line (connected, migrated, start hooks done) and the first health answer.

    python -m bench.restarts [--rounds 3] [--service catalog ...]

A ``kill -9`` of the scheduler-adapter includes its wait for the killed process's lease (see
``BERTH_LEASE_IDENTITY``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import statistics
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from bench.suite_bench import write_inventory
from berth.cli.suite import SERVICES, Suite
from berth.contracts.subjects import rpc_health


def _log_times(path: Path, offset: int) -> dict[str, float]:
    """Wall-clock times of the first line and of the "started" line written after ``offset``."""
    times: dict[str, float] = {}
    with path.open("rb") as f:
        f.seek(offset)
        for raw in f:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            at = datetime.fromisoformat(line["time"]).timestamp()
            times.setdefault("first log line", at)
            message = str(line.get("message", ""))
            if " started (" in message and "started" not in times:
                times["started"] = at
                print(f"  {message}", flush=True)
            if "holds the lease" in message and "lease taken" not in times:
                times["lease taken"] = at
    return times


async def _until_healthy(suite: Suite, service: str, timeout: float) -> float:
    nc = await suite.connect()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                await nc.request(rpc_health(service), b"{}", timeout=0.5)
                return time.time()
            except Exception:
                await asyncio.sleep(0.05)
        raise TimeoutError(f"{service} not healthy within {timeout:.0f}s")
    finally:
        await nc.close()


def measure(suite: Suite, service: str, timeout: float) -> dict[str, float]:
    log = suite.log_dir / f"{service}.log"
    offset = log.stat().st_size
    old = suite.procs[service]
    killed = time.time()
    os.kill(old.pid, signal.SIGKILL)
    done: list[float] = []
    failure: list[BaseException] = []

    def wait() -> None:
        try:
            done.append(asyncio.run(_until_healthy(suite, service, timeout)))
        except BaseException as exc:
            failure.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    respawned: float | None = None
    while waiter.is_alive():
        time.sleep(0.02)
        suite.supervisor.check()
        if respawned is None and suite.procs[service] is not old:
            respawned = time.time()
    if failure:
        raise failure[0]
    steps = {"process started": respawned or killed}
    steps.update(_log_times(log, offset))
    steps["healthy"] = done[0]
    return {k: round(v - killed, 2) for k, v in sorted(steps.items(), key=lambda kv: kv[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--service", action="append", help="default: every service")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    services = args.service or list(SERVICES)
    extra = dict(kv.split("=", 1) for kv in args.env)
    for key in ("BERTH_NATS_URL", "BERTH_DATABASE_URL"):
        os.environ.pop(key, None)
    state = Path(tempfile.mkdtemp(prefix="berth-restarts-"))
    inventory = state / "inventory.yaml"
    write_inventory(inventory, 100)
    suite = Suite(state, inventory=inventory, extra_env={"BERTH_LOG_LEVEL": "INFO", **extra})
    results: dict[str, list[dict[str, float]]] = {s: [] for s in services}
    try:
        suite.start(timeout=180)
        time.sleep(5)
        for round_ in range(args.rounds):
            for service in services:
                # Past the supervisor's quick-death window, so it restarts at once.
                time.sleep(max(0.0, suite.supervisor.min_uptime + 1 - _uptime(suite, service)))
                steps = measure(suite, service, args.timeout)
                results[service].append(steps)
                print(f"round {round_ + 1} {service}: {steps}", flush=True)
    finally:
        suite.stop()
        shutil.rmtree(state, ignore_errors=True)
    print("\nkill -9 -> healthy, median of", args.rounds, "(s):")
    for service, runs in results.items():
        keys = list(runs[0]) if runs else []
        median = {k: round(statistics.median(r.get(k, math.nan) for r in runs), 2) for k in keys}
        print(f"  {service:20} {median}")
    if args.output:
        args.output.write_text(json.dumps(results, indent=2))


def _uptime(suite: Suite, service: str) -> float:
    stat = Path(f"/proc/{suite.procs[service].pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    boot = float(Path("/proc/uptime").read_text().split()[0])
    return boot - int(stat[19]) / ticks


if __name__ == "__main__":
    main()
