"""Faults during a run of 1,000 paced training submissions on the whole suite: a kill -9 of
each service in turn and of nats-server, and a PostgreSQL outage longer than the whole
redelivery budget. Each run ends with every workload recorded once and Completed once, with one
terminal event, none lost, none duplicated, none run twice; the recovery time of each fault is
printed with the account."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from berth.cli.suite import AGENT, SERVICES, Suite
from tests.faults.conftest import REDELIVERY_BUDGET_SECONDS
from tests.faults.harness import Account, Fault, FaultRun, drive

pytestmark = pytest.mark.faults

OUTAGE_SECONDS = 8.0


def kill_service(suite: Suite, name: str) -> Fault:
    async def inject() -> None:
        os.kill(suite.procs[name].pid, signal.SIGKILL)

    return Fault(f"kill -9 {name}", at=0.0, inject=inject, hits=(name,))


def kill_nats(suite: Suite) -> Fault:
    async def inject() -> None:
        assert suite.nats is not None and suite.nats.process is not None
        os.kill(suite.nats.process.pid, signal.SIGKILL)

    return Fault("kill -9 nats-server", at=0.0, inject=inject, hits=tuple(SERVICES))


def postgres_outage(suite: Suite, seconds: float) -> Fault:
    async def inject() -> None:
        assert suite.postgres is not None
        await asyncio.to_thread(suite.postgres.stop)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(suite.postgres.start)

    return Fault(f"PostgreSQL down {seconds:g}s", at=0.0, inject=inject, hits=tuple(SERVICES))


def at(fault: Fault, seconds: float) -> Fault:
    fault.at = seconds
    return fault


def check(account: Account, title: str, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\n" + account.report(title))
    assert account.lost == []
    assert account.duplicated == []
    assert account.rejected == []
    assert account.run_twice == []
    assert account.recorded == account.completed == account.submitted


def test_kill_9_of_each_service_and_of_nats_server_loses_and_repeats_nothing(
    fault_suite: Suite, capsys: pytest.CaptureFixture[str]
) -> None:
    services = [name for name in SERVICES if name != AGENT]
    faults = [at(kill_service(fault_suite, name), 2 + 3 * i) for i, name in enumerate(services)]
    faults.append(at(kill_nats(fault_suite), 2 + 3 * len(services)))
    run = FaultRun(fault_suite, label="kill")
    account = drive(fault_suite, lambda: run.run(faults))
    check(account, "kill -9 of each service but the scheduler-adapter, then nats-server", capsys)


def test_a_postgresql_outage_longer_than_the_redelivery_budget_loses_nothing(
    fault_suite: Suite, capsys: pytest.CaptureFixture[str]
) -> None:
    assert OUTAGE_SECONDS > 3 * REDELIVERY_BUDGET_SECONDS
    run = FaultRun(fault_suite, label="outage")
    account = drive(
        fault_suite, lambda: run.run([at(postgres_outage(fault_suite, OUTAGE_SECONDS), 6)])
    )
    account.notes.append(f"redelivery budget {REDELIVERY_BUDGET_SECONDS:g}s")
    check(account, f"PostgreSQL outage of {OUTAGE_SECONDS:g}s", capsys)


def test_kill_9_of_the_scheduler_adapter_runs_nothing_twice(
    fault_suite: Suite, capsys: pytest.CaptureFixture[str]
) -> None:
    run = FaultRun(fault_suite, label="agent")
    account = drive(fault_suite, lambda: run.run([at(kill_service(fault_suite, AGENT), 8)]))
    check(account, "kill -9 of the scheduler-adapter", capsys)
