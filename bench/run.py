"""The whole benchmark in one go: berth's suite, then the bare nats-py baselines on the same
embedded NATS and PostgreSQL, a comparison table, and ``bench/results/latest.json``.

Run ``python -m bench.run --help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.bare_pipeline import DEFAULT_BATCH, DEFAULT_GATHER, asyncpg_dsn, run_bare
from bench.common import HOPS, OTHER, BenchFailure, format_measurement, noise_warning
from bench.suite_bench import (
    add_common_options,
    add_suite_options,
    bench_suite,
    options_from,
    parse_env,
    print_profiles,
    start_suite,
    stop_services,
)
from berth.cli.suite import Suite
from berth.contracts.roles import ADMIN

RESULTS = Path(__file__).resolve().parent / "results"
# Result key -> row label of the final table.
RUNS = {
    "berth": "berth (6 services, PostgreSQL)",
    "bare": "bare nats-py",
    "bare_pg": "bare nats-py + asyncpg",
}


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    if not a or not b or not b.get("workloads_per_s"):
        return None
    return round(float(a["workloads_per_s"]) / float(b["workloads_per_s"]), 3)


def summary(results: dict[str, Any]) -> str:
    runs = {key: results.get(key) for key in RUNS}
    replicas = results["config"].get("replicas", 1)
    lines = [
        "",
        f"=== berth vs bare nats-py, {results['workloads']} workloads, "
        f"{results['machine']['cpus']} CPUs"
        + (f", {replicas} replicas per service" if replicas > 1 else "")
        + " ===",
        f"{'':32} {'workloads/s':>11} {'events/s':>9} {'e2e p50':>9} {'e2e p99':>9}",
    ]
    for key, label in RUNS.items():
        run = runs[key]
        if not run:
            lines.append(f"{label:32} {'failed: ' + results['errors'].get(key, '?')[:60]}")
            continue
        e2e = run["latency_ms"]["arrival"]["end to end"]
        lines.append(
            f"{label:32} {run['workloads_per_s']:>11.1f} {run['events_per_s']:>9.0f} "
            f"{e2e['p50']:>7.0f}ms {e2e['p99']:>7.0f}ms"
        )
    ratios = results["ratios"]

    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} (bare is {1 / value:.1f}x faster)"

    lines.append(f"berth / bare          = {show(ratios['berth_over_bare'])}")
    lines.append(f"berth / bare+asyncpg  = {show(ratios['berth_over_bare_pg'])}")
    lines.append("")
    lines.append("latency p50 / p99 per hop (arrival times, ms):")
    lines.append(f"  {'hop':30}" + "".join(f" {key:>17}" for key in RUNS))
    for label, _, _ in HOPS:
        cells = []
        for key in RUNS:
            hop = (runs[key] or {}).get("latency_ms", {}).get("arrival", {}).get(label, {})
            cells.append(
                f" {hop['p50']:>8.0f} /{hop['p99']:>6.0f}" if hop.get("n") else f" {'-':>17}"
            )
        lines.append(f"  {label:30}" + "".join(cells))
    for key, label in RUNS.items():
        run = runs[key]
        if run and (warning := noise_warning(run)):
            lines.append(f"{label}: {warning}")
    berth = runs["berth"]
    if berth:
        per = {k: v for k, v in berth["cpu_ms_per_workload"].items() if k != OTHER}
        busiest = sorted(per, key=lambda k: -per[k])
        lines.append("")
        lines.append(
            "berth CPU ms per workload: " + ", ".join(f"{k} {per[k]:.2f}" for k in busiest)
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark berth against bare nats-py: start the suite on embedded NATS and "
        "PostgreSQL and run the suite benchmark (see bench.suite_bench), stop the six services, "
        "run the bare pipeline without and with asyncpg writes on the same servers (see "
        "bench.bare_pipeline, with the suite's batch size and fetch gather time), print a "
        "comparison and write it to bench/results/latest.json. Exit status 1 if a run failed.",
    )
    add_common_options(parser)
    add_suite_options(parser)
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS / "latest.json",
        help="where to write the results as JSON (default bench/results/latest.json)",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    env = parse_env(args.env)
    options = options_from(args)
    # The baselines batch as the services were told to.
    batch = int(env.get("BERTH_BATCH_SIZE", DEFAULT_BATCH))
    gather = float(env.get("BERTH_FETCH_TIMEOUT", DEFAULT_GATHER))
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "workloads": args.workloads,
        # The services are measured as they are in the working tree: the diff's hash tells two
        # runs of the same uncommitted code apart from runs of different code.
        "git": {
            "commit": _git("rev-parse", "HEAD"),
            "dirty": bool(_git("status", "--short")),
            "diff_sha1": hashlib.sha1(_git("diff", "HEAD").encode()).hexdigest(),
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "config": {
            "chunk": args.chunk,
            "rate": args.rate,
            "sim_speed": args.sim_speed,
            "runtime_seconds": args.runtime,
            "service_env": env,
            "batch_size": batch,
            "fetch_gather_seconds": gather,
            # Profiled services run slower: such a run's berth figures are not throughput figures.
            "profiled": sorted(args.profile or ()),
            "replicas": args.replicas,
        },
        "errors": {},
    }
    state_dir = Path(tempfile.mkdtemp(prefix="berth-bench-"))
    suite: Suite | None = None
    try:
        print(f"== berth suite, {args.workloads} workloads", flush=True)
        suite = start_suite(
            state_dir,
            args.workloads,
            sim_speed=args.sim_speed,
            extra_env=env,
            profile=set(args.profile or ()),
            replicas=args.replicas,
        )
        try:
            results["berth"] = asyncio.run(
                bench_suite(suite, args.workloads, options, runtime_seconds=args.runtime)
            )
            print(format_measurement("berth", results["berth"]), flush=True)
        except BenchFailure as exc:
            results["errors"]["berth"] = str(exc)
            print(f"berth run failed: {exc}", file=sys.stderr, flush=True)
        stop_services(suite)
        for key, dsn in (("bare", None), ("bare_pg", asyncpg_dsn(suite.database_url))):
            print(f"== {RUNS[key]}, {args.workloads} workloads", flush=True)
            time.sleep(1)  # let the server settle between runs
            try:
                results[key] = run_bare(
                    suite.nats_url,
                    args.workloads,
                    options,
                    dsn=dsn,
                    batch=batch,
                    gather=gather,
                    pg_data_dir=state_dir / "pg",
                    credentials=suite.credentials(ADMIN),
                )
                print(format_measurement(RUNS[key], results[key]), flush=True)
            except BenchFailure as exc:
                results["errors"][key] = str(exc)
                print(f"{key} run failed: {exc}", file=sys.stderr, flush=True)
    finally:
        if suite is not None:
            suite.stop()
            print_profiles(suite)
        if results["errors"] or args.keep_state:
            print(f"state and service logs kept in {state_dir}", file=sys.stderr)
        else:
            shutil.rmtree(state_dir, ignore_errors=True)
    results["ratios"] = {
        "berth_over_bare": _ratio(results.get("berth"), results.get("bare")),
        "berth_over_bare_pg": _ratio(results.get("berth"), results.get("bare_pg")),
    }
    print(summary(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults written to {args.output}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
