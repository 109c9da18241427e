"""The simulated cluster under load: thousands of trainings through a large cluster.

    python -m bench.simulator_bench [--workloads 5000] [--nodes-per-pool 200] [--speed 200]

Applies rendered trainings (one GPU, 10 simulated seconds each) in batches of 500 and waits
until every one has completed; prints the wall-clock time. 11 simulated seconds per job at 200x
is 55 ms, so nearly all of it is the simulator's own cost. Reference: under 15 s on a laptop.
The unit tier checks that the flow completes, never how long it takes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from berth.scheduler_adapter.simulation import Inventory
from tests.unit.scheduler_adapter.adapter_builders import manifests
from tests.unit.scheduler_adapter.adapter_recorder import simulated

BATCH = 500


async def measure(workloads: int, nodes_per_pool: int, speed: float) -> float:
    objects = [manifests("training", f"bulk-{i}", gpus=1, runtime=10) for i in range(workloads)]
    started = time.perf_counter()
    async with simulated(Inventory.default(nodes_per_pool=nodes_per_pool), speed=speed) as (
        cluster,
        recorder,
    ):
        for index in range(0, workloads, BATCH):
            await cluster.apply([obj for batch in objects[index : index + BATCH] for obj in batch])
            await asyncio.sleep(0)
        for index in range(workloads):
            await recorder.wait_for(f"wl-bulk-{index}", "Completed", timeout=600)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulator_bench", description=__doc__)
    parser.add_argument("--workloads", type=int, default=5000)
    parser.add_argument("--nodes-per-pool", type=int, default=200)
    parser.add_argument("--speed", type=float, default=200.0)
    args = parser.parse_args(argv)
    elapsed = asyncio.run(measure(args.workloads, args.nodes_per_pool, args.speed))
    print(
        f"simulated cluster: {args.workloads} trainings on {args.nodes_per_pool * 2} nodes "
        f"completed in {elapsed:.2f} s ({args.workloads / elapsed:.0f} workloads/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
