"""Latency under a paced load: the suite benchmark with submissions paced at a steady rate (200
per second unless told), summarised against the latency targets: p99 submit -> approved below
50 ms and submit -> Running below 250 ms.

Paced below saturation, a hop's latency is the time a workload waits plus the CPU it takes,
not the time it queues behind others. The end-to-end figure is split into what berth's services
take (submit -> scheduled) and what follows on the simulated cluster (scheduled -> Running: its
controllers' simulated delays at ``--sim-speed``, then the adapter's watch, its phase events and
their relay). Results go to ``bench/results/paced.json``. Run ``python -m bench.paced --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.common import format_measurement
from bench.suite_bench import add_common_options, add_suite_options, run_suite

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_RATE = 200.0
DEFAULT_WORKLOADS = 3000
# (label, hop in the measurement, target p99 in ms or None)
TARGETS: tuple[tuple[str, str, float | None], ...] = (
    ("submit -> approved", "submit -> approved", 50.0),
    ("submit -> Running", "end to end", 250.0),
    ("  berth: submit -> scheduled", "submit -> scheduled", None),
    ("  cluster: scheduled -> Running", "cluster: scheduled->Running", None),
)


def paced_summary(result: dict[str, Any], rate: float) -> str:
    """p50 / p99 of the targeted spans (arrival times), each against its target."""
    arrival = result["latency_ms"]["arrival"]
    lines = [
        f"paced at {rate:g} workloads/s ({result['workloads']} workloads), latency from the "
        "submission (arrival times):",
        f"  {'':34} {'p50':>9} {'p99':>9}   target p99",
    ]
    for label, hop, target in TARGETS:
        figures = arrival.get(hop, {})
        if not figures.get("n"):
            lines.append(f"  {label:34} {'-':>9} {'-':>9}")
            continue
        verdict = ""
        if target is not None:
            met = figures["p99"] < target
            verdict = f"   < {target:.0f} ms: {'met' if met else 'NOT MET'}"
        lines.append(f"  {label:34} {figures['p50']:>7.1f}ms {figures['p99']:>7.1f}ms{verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.paced",
        description="Start the whole suite on embedded NATS and PostgreSQL, pace training "
        "submissions at --rate per second, and print p50/p99 of submit -> approved and "
        "submit -> Running against their targets (p99 below 50 ms and 250 ms), with the "
        "end-to-end figure split into berth's services and the simulated cluster. Exit "
        "status 1 when the run fails (not when a target is missed: the figures say so).",
    )
    add_common_options(parser)
    add_suite_options(parser)
    parser.set_defaults(rate=DEFAULT_RATE, workloads=DEFAULT_WORKLOADS)
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS / "paced.json",
        help="where to write the results as JSON (default bench/results/paced.json)",
    )
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be above 0: this stage measures a paced load")
    print(f"== berth suite, {args.workloads} workloads paced at {args.rate:g}/s", flush=True)

    def report(result: dict[str, Any]) -> None:
        print(format_measurement("berth", result))
        print(paced_summary(result, args.rate))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        payload = {"rate": args.rate, "sim_speed": args.sim_speed, "berth": result}
        args.output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.output}")

    return run_suite(args, report)


if __name__ == "__main__":
    sys.exit(main())
