"""Run one simulated cluster: its API server on a port, its kubeconfig and state in a folder.

``python -m berth.scheduler_adapter.simulation --cluster edge --state-dir .berth/clusters/edge
--port 16443 [--inventory FILE] [--speed 1]`` serves until interrupted and writes
``<state-dir>/kubeconfig`` once it listens (a scheduler-adapter's ``BERTH_KUBECONFIG``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from berth.scheduler_adapter.simulation.apiserver import SimulatedApiServer
from berth.scheduler_adapter.simulation.inventory import Inventory, load_inventory
from berth.shared.heap import settle_heap

KUBECONFIG = "kubeconfig"
STATE = "state.json"


def kubeconfig_path(state_dir: Path) -> Path:
    return state_dir / KUBECONFIG


async def serve(
    *,
    cluster: str,
    state_dir: Path,
    host: str,
    port: int,
    inventory: Inventory,
    speed: float,
    advertise: str | None = None,
) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    server = SimulatedApiServer(
        inventory, cluster=cluster, speed=speed, state_file=state_dir / STATE
    )
    await server.start(host, port)
    if advertise:
        server.url = advertise
    path = kubeconfig_path(state_dir)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(server.kubeconfig(), encoding="utf-8")
    temporary.chmod(0o600)
    os.replace(temporary, path)
    logging.getLogger(__name__).info(
        "cluster %s serves %s (kubeconfig %s)", cluster, server.url, path
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m berth.scheduler_adapter.simulation")
    parser.add_argument("--cluster", default=os.environ.get("BERTH_CLUSTER_ID", "local"))
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    # The server URL the kubeconfig names, when clients reach it by another address (a
    # container's service name).
    parser.add_argument("--advertise", default=None)
    # A YAML inventory, or a preset's name (default, edge).
    parser.add_argument("--inventory", default=os.environ.get("BERTH_SIM_INVENTORY"))
    parser.add_argument(
        "--speed", type=float, default=float(os.environ.get("BERTH_SIM_SPEED", "1"))
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=os.environ.get("BERTH_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    inventory = load_inventory(args.inventory)
    settle_heap()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(
                cluster=args.cluster,
                state_dir=args.state_dir,
                host=args.host,
                port=args.port,
                inventory=inventory,
                speed=args.speed,
                advertise=args.advertise,
            )
        )
