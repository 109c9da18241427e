"""Keeping the local suite's processes honest: one ``berth up`` per state directory, children
restarted when they die, and no embedded PostgreSQL left behind when ``berth up`` itself dies.

* ``StateLock``: an exclusive ``flock`` on a file in the state directory. The kernel releases it
  when the holder ends, however it ends (even ``kill -9``), so a stale lock cannot exist and a
  second ``berth up`` is told who runs, before it touches the NATS store, the database or the
  recorded endpoints.
* ``Supervisor``: restarts a child that exited (a service, nats-server, anything with a process)
  at once, then with a growing delay while it keeps dying soon after each start, saying so.
* ``PostgresWatchdog``: PostgreSQL is a daemon (pg_ctl detaches it), so it does not die with
  ``berth up`` as the other children do. A small process holds the read end of a pipe whose
  write end only ``berth up`` has; the kernel closes it when ``berth up`` ends, however it ends,
  and the watchdog then shuts PostgreSQL down (fast shutdown: connections are closed, nothing
  committed is lost).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCK_FILE = "up.lock"
WATCHDOG_COMMAND = (sys.executable, "-m", "berth.cli.supervision", "postgres-watchdog")


class AlreadyRunning(RuntimeError):
    """Another process holds the state directory."""

    def __init__(self, pid: int | None, nats_url: str | None) -> None:
        self.pid = pid
        self.nats_url = nats_url
        where = nats_url or "still starting"
        super().__init__(f"berth is already running in this checkout (pid {pid or '?'}, {where})")


class StateLock:
    """One suite per state directory. What the holder notes (its pid, then its NATS URL) is
    what a second one reports."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None
        self._facts: dict[str, Any] = {}

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise ``AlreadyRunning`` naming the holder."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Not inherited by children (Python opens files close-on-exec): a service that outlived
        # berth up must not keep the checkout locked.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self._read_holder()
            raise AlreadyRunning(holder.get("pid"), holder.get("nats_url")) from None
        self._fd = fd
        self.note(pid=os.getpid())

    def note(self, **facts: Any) -> None:
        """Record facts about the holder (rewritten whole; readers retry a torn read)."""
        if self._fd is None:
            return
        self._facts.update(facts)
        data = json.dumps(self._facts).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        # The file stays: removing it would let a newcomer lock a fresh file while someone
        # still waits on the old one. Emptied, it names nobody.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)
        self._facts = {}

    def _read_holder(self) -> dict[str, Any]:
        # The holder may be rewriting the file just now: a few short tries.
        for _ in range(20):
            with contextlib.suppress(OSError, ValueError):
                facts = json.loads(self.path.read_text())
                if isinstance(facts, dict) and facts.get("pid"):
                    return facts
            time.sleep(0.05)
        return {}


@dataclass
class _Child:
    name: str
    process: Callable[[], subprocess.Popen[bytes] | None]
    restart: Callable[[], object]
    detail: Callable[[], str]
    started: float
    quick_deaths: int = 0
    due: float | None = None


class Supervisor:
    """Restarts the children it watches when they exit.

    A child that dies is restarted at once; one that dies again within ``min_uptime`` of its
    restart waits ``first_delay``, doubled each time, up to ``max_delay`` (a crash loop does not
    eat the machine). Every death and restart is reported through ``progress``."""

    def __init__(
        self,
        progress: Callable[[str], None],
        *,
        min_uptime: float = 10.0,
        first_delay: float = 1.0,
        max_delay: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.progress = progress
        self.min_uptime = min_uptime
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.clock = clock
        self._children: dict[str, _Child] = {}
        self.restarts: dict[str, int] = {}

    def watch(
        self,
        name: str,
        process: Callable[[], subprocess.Popen[bytes] | None],
        restart: Callable[[], object],
        detail: Callable[[], str] = lambda: "",
    ) -> None:
        """Watch ``name``: ``process`` gives its current process (None: not running),
        ``restart`` starts it again, ``detail`` says what it said last (a log tail)."""
        previous = self._children.get(name)
        self._children[name] = _Child(
            name,
            process,
            restart,
            detail,
            started=self.clock(),
            quick_deaths=previous.quick_deaths if previous else 0,
        )

    def forget(self, name: str) -> None:
        """Stop watching ``name`` (it is being stopped on purpose)."""
        self._children.pop(name, None)

    @property
    def watched(self) -> list[str]:
        return list(self._children)

    def check(self) -> None:
        """One pass: notice deaths, restart what is due."""
        now = self.clock()
        for child in list(self._children.values()):
            if child.due is None:
                proc = child.process()
                code = None if proc is None else proc.poll()
                if proc is not None and code is None:
                    if now - child.started >= self.min_uptime:
                        child.quick_deaths = 0
                    continue
                quick = now - child.started < self.min_uptime
                child.quick_deaths = child.quick_deaths + 1 if quick else 0
                delay = self._delay(child.quick_deaths)
                child.due = now + delay
                when = "now" if delay == 0 else f"in {delay:g}s"
                detail = child.detail().strip()
                self.progress(
                    f"{child.name} exited with {code}; restarting {when}"
                    + (f"\n{detail}" if detail else "")
                )
            if child.due is not None and now >= child.due:
                self._restart(child)

    def _delay(self, quick_deaths: int) -> float:
        if quick_deaths <= 1:
            # The first death after a good run: at once.
            return 0.0 if quick_deaths == 0 else self.first_delay
        return float(min(self.first_delay * 2 ** (quick_deaths - 1), self.max_delay))

    def _restart(self, child: _Child) -> None:
        child.due = None
        child.started = self.clock()
        try:
            child.restart()
        except Exception as exc:
            child.quick_deaths += 1
            delay = self._delay(child.quick_deaths)
            child.due = child.started + delay
            self.progress(
                f"{child.name} could not be restarted ({type(exc).__name__}: {exc}); "
                f"trying again in {delay:g}s"
            )
            return
        self.restarts[child.name] = self.restarts.get(child.name, 0) + 1
        self.progress(f"{child.name} restarted")


class PostgresWatchdog:
    """Shuts down the PostgreSQL of ``data_dir`` once this process is gone (see module doc)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._write_end: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PostgresWatchdog:
        read_end, write_end = os.pipe()  # both close-on-exec: no other child inherits them
        try:
            self._proc = subprocess.Popen(
                [*WATCHDOG_COMMAND, str(read_end), str(self.data_dir)],
                pass_fds=(read_end,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # Not in the terminal's process group: Ctrl-C goes to berth up, which stops
                # PostgreSQL itself; the watchdog is for when berth up cannot.
                start_new_session=True,
            )
        finally:
            os.close(read_end)
        self._write_end = write_end
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self) -> None:
        """Berth up stopped PostgreSQL itself: the watchdog finds nothing to do and exits."""
        if self._write_end is not None:
            os.close(self._write_end)
            self._write_end = None
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(15)
            self._proc = None


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid of the PostgreSQL serving ``data_dir``, when one runs."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        # The pid file may be stale and its pid reused by another program.
        if any(part.endswith(b"postgres") for part in cmdline[:1]):
            return pid
        if not Path("/proc").exists():  # pragma: no cover - not Linux: trust the pid file
            os.kill(pid, 0)
            return pid
    return None


def stop_postmaster(data_dir: Path, timeout: float = 20.0) -> bool:
    """Fast shutdown of the PostgreSQL serving ``data_dir``; True when one was stopped."""
    pid = postmaster_pid(data_dir)
    if pid is None:
        return False
    deadline = time.monotonic() + timeout
    # SIGINT: fast shutdown (clients are disconnected, committed data is safe); SIGQUIT, the
    # immediate one, only if that does not end it in time.
    for signum, share in ((signal.SIGINT, 0.75), (signal.SIGQUIT, 1.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        until = time.monotonic() + (deadline - time.monotonic()) * share
        while time.monotonic() < until:
            if postmaster_pid(data_dir) != pid:
                return True
            time.sleep(0.05)
    return postmaster_pid(data_dir) != pid


def _watchdog_main(read_end: int, data_dir: Path) -> None:
    # Blocks until every write end is closed: berth up stopped or died.
    with contextlib.suppress(OSError):
        while os.read(read_end, 1):
            pass
    stop_postmaster(data_dir)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "postgres-watchdog":
        _watchdog_main(int(sys.argv[2]), Path(sys.argv[3]))
