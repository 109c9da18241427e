"""The pieces `berth up` keeps its processes with: the state directory's lock, the supervisor's
restart rules, and how a running PostgreSQL is recognised from its pid file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from berth.cli.supervision import AlreadyRunning, StateLock, Supervisor, postmaster_pid


class FakeProcess:
    def __init__(self) -> None:
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestStateLock:
    def test_a_second_holder_is_refused_naming_the_first_and_its_nats(self, tmp_path: Path) -> None:
        first = StateLock(tmp_path)
        first.acquire()
        first.note(nats_url="nats://127.0.0.1:4222")
        with pytest.raises(AlreadyRunning) as refused:
            StateLock(tmp_path).acquire()
        assert str(refused.value) == (
            f"berth is already running in this checkout (pid {os.getpid()}, nats://127.0.0.1:4222)"
        )
        first.release()

    def test_the_lock_is_free_again_once_released(self, tmp_path: Path) -> None:
        first = StateLock(tmp_path)
        first.acquire()
        first.release()
        second = StateLock(tmp_path)
        second.acquire()
        assert second.held
        second.release()

    def test_a_holder_that_was_killed_holds_nothing(self, tmp_path: Path) -> None:
        # The kernel drops a flock with its process, however the process ends.
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, time; from pathlib import Path; "
                "from berth.cli.supervision import StateLock; "
                f"StateLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True); "
                "time.sleep(60)",
            ],
            stdout=subprocess.PIPE,
        )
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(AlreadyRunning, match=f"pid {holder.pid}, still starting"):
            StateLock(tmp_path).acquire()
        holder.kill()
        holder.wait()
        lock = StateLock(tmp_path)
        lock.acquire()
        lock.release()


class TestSupervisor:
    def supervisor(self) -> tuple[Supervisor, Clock, list[str]]:
        clock = Clock()
        said: list[str] = []
        return Supervisor(said.append, min_uptime=10, first_delay=1, clock=clock), clock, said

    def test_a_child_that_dies_after_a_good_run_is_restarted_at_once(self) -> None:
        supervisor, clock, said = self.supervisor()
        procs = [FakeProcess()]
        supervisor.watch(
            "nats-server", lambda: procs[-1], lambda: procs.append(FakeProcess()), lambda: "bye"
        )
        clock.now += 60
        supervisor.check()
        assert len(procs) == 1
        procs[-1].returncode = -9
        supervisor.check()
        assert len(procs) == 2
        assert said == ["nats-server exited with -9; restarting now\nbye", "nats-server restarted"]
        assert supervisor.restarts == {"nats-server": 1}

    def test_a_child_that_keeps_dying_waits_longer_each_time(self) -> None:
        supervisor, clock, said = self.supervisor()
        procs = [FakeProcess()]
        supervisor.watch("intake", lambda: procs[-1], lambda: procs.append(FakeProcess()))
        waits = []
        for _ in range(4):
            procs[-1].returncode = 1
            supervisor.check()
            started = len(procs)
            waited = 0.0
            while len(procs) == started:
                clock.now += 0.5
                waited += 0.5
                supervisor.check()
            waits.append(waited)
        # Each restart came quickly after the last: 1 s, then 2, 4, 8.
        assert waits == [1.0, 2.0, 4.0, 8.0]
        assert "intake exited with 1; restarting in 8s" in said

    def test_a_restart_that_fails_is_tried_again_later(self) -> None:
        supervisor, clock, said = self.supervisor()
        procs = [FakeProcess()]
        attempts = []

        def restart() -> None:
            attempts.append(clock.now)
            if len(attempts) == 1:
                raise OSError("port in use")
            procs.append(FakeProcess())

        supervisor.watch("nats-server", lambda: procs[-1], restart)
        clock.now += 60
        procs[-1].returncode = -9
        supervisor.check()
        assert said[-1] == (
            "nats-server could not be restarted (OSError: port in use); trying again in 1s"
        )
        while len(procs) == 1:
            clock.now += 0.5
            supervisor.check()
        assert attempts == [160.0, 161.0]

    def test_a_forgotten_child_is_left_alone(self) -> None:
        supervisor, _clock, said = self.supervisor()
        proc = FakeProcess()
        supervisor.watch("policy", lambda: proc, lambda: pytest.fail("restarted"))
        supervisor.forget("policy")
        proc.returncode = 0
        supervisor.check()
        assert said == []


class TestPostmasterPid:
    def test_a_pid_file_naming_a_process_that_is_not_postgres_is_stale(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "postmaster.pid").write_text(f"{os.getpid()}\n{tmp_path}\n")
        assert postmaster_pid(tmp_path) is None

    def test_no_pid_file_no_postgres(self, tmp_path: Path) -> None:
        assert postmaster_pid(tmp_path) is None
