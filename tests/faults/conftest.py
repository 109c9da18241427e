"""The whole suite as ``berth up`` runs it, for fault tests: embedded nats-server and PostgreSQL
started by the suite itself (so that a test may kill or stop them), in a state directory of its
own, supervised by the test's main thread."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.suite_bench import ACTOR, write_inventory
from berth.cli.suite import SERVICES, Suite

# Short, so that an outage of a few seconds outlasts it many times over: a handler's failure
# on a message is retried after 0.5 s, then 1 s, then dead-lettered. An outage must not count.
MAX_DELIVER = 3
NAK_DELAY_SECONDS = 0.5
REDELIVERY_BUDGET_SECONDS = sum(NAK_DELAY_SECONDS * k for k in range(1, MAX_DELIVER))
# A message delivered to a process that is then killed comes back after ack_wait: shorter than
# the default 30 s, so that a run ends sooner; what is counted does not depend on it.
ACK_WAIT_SECONDS = 10
SERVICE_ENV = {
    # The runs submit as the benchmark's user: the installation's administrator.
    "BERTH_ADMIN": ACTOR.email,
    "BERTH_LOG_LEVEL": "WARNING",
    "BERTH_MAX_DELIVER": str(MAX_DELIVER),
    "BERTH_NAK_DELAY_SECONDS": str(NAK_DELAY_SECONDS),
    "BERTH_ACK_WAIT_SECONDS": str(ACK_WAIT_SECONDS),
    # Spans are not what these tests count; publishing them costs the two CI cores.
    "BERTH_LOCAL_TRACES": "false",
}
# 20 simulated seconds per second: a workload starts within a fraction of a second, and one
# that runs 40 simulated seconds completes in 2.
SIM_SPEED = 20.0


@pytest.fixture(scope="module")
def fault_suite() -> Iterator[Suite]:
    yield from _suite()


@pytest.fixture(scope="module")
def scaled_suite() -> Iterator[Suite]:
    """Two replicas of every service and of the agent, on a three-node NATS cluster whose
    streams are kept on every node."""
    yield from _suite(replicas=2, nats_nodes=3, timeout=240)


def _suite(**options: Any) -> Iterator[Suite]:
    timeout = options.pop("timeout", 120)
    # The suite starts its own servers only when none is given (it reads these too).
    saved = {
        k: os.environ.pop(k) for k in ("BERTH_NATS_URL", "BERTH_DATABASE_URL") if k in os.environ
    }
    # A short path: PostgreSQL's unix socket lives in its data directory.
    state = Path(tempfile.mkdtemp(prefix="berth-faults-"))
    inventory = state / "inventory.yaml"
    write_inventory(inventory, 1200)
    suite = Suite(state, sim_speed=SIM_SPEED, inventory=inventory, extra_env=SERVICE_ENV, **options)
    try:
        suite.start(timeout=timeout)
        yield suite
    finally:
        suite.stop()
        os.environ.update(saved)
        for name in SERVICES:
            tail = suite.log_tail(name, 10)
            if tail:
                print(f"--- {name} log tail ---\n{tail}")
        shutil.rmtree(state, ignore_errors=True)
