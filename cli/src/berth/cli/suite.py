"""The whole suite as separate processes: what ``berth up`` (``make run``) and the end-to-end
tests and benchmark run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from berth.shared.embedded import EmbeddedNats, EmbeddedPostgres, die_with_parent, free_port

SERVICES: dict[str, str] = {
    "catalog": "berth.catalog",
    "cluster-sync": "berth.cluster_sync",
    "ownership": "berth.ownership",
    "policy": "berth.policy",
    "intake": "berth.intake",
    "scheduler-adapter": "berth.scheduler_adapter",
}


class Suite:
    def __init__(
        self,
        state_dir: Path,
        *,
        nats_url: str | None = None,
        database_url: str | None = None,
        sim_speed: float = 1.0,
        inventory: Path | None = None,
        extra_env: dict[str, str] | None = None,
        progress: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self._nats_url = nats_url or os.environ.get("BERTH_NATS_URL")
        self._database_url = database_url or os.environ.get("BERTH_DATABASE_URL")
        self.sim_speed = sim_speed
        self.inventory = inventory
        self.extra_env = extra_env or {}
        self.progress = progress
        self.nats: object | None = None
        self.postgres: object | None = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def nats_url(self) -> str:
        assert self._nats_url
        return self._nats_url

    @property
    def database_url(self) -> str:
        assert self._database_url
        return self._database_url

    def start(self, timeout: float = 60.0) -> Suite:

        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not self._nats_url:
            self.progress("starting NATS with JetStream (embedded)…")
            nats = EmbeddedNats(
                self.state_dir / "nats",
                port=_preferred(4222),
                log_file=self.log_dir / "nats-server.log",
            ).start()
            self.nats, self._nats_url = nats, nats.url
        if not self._database_url:
            self.progress("starting PostgreSQL (embedded)…")
            pg = EmbeddedPostgres(self.state_dir / "pg").start()
            self.postgres, self._database_url = pg, pg.url
        for name in SERVICES:
            self.start_service(name)
        self.wait_ready(timeout)
        return self

    def env(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            BERTH_NATS_URL=self.nats_url,
            BERTH_DATABASE_URL=self.database_url,
            BERTH_SERVICE_NAME=name,
            BERTH_SIM_SPEED=str(self.sim_speed),
            BERTH_KEYS_DIR=str(self.state_dir / "keys"),
            PYTHONUNBUFFERED="1",
        )
        if self.inventory:
            env["BERTH_SIM_INVENTORY"] = str(self.inventory)
        env.update(self.extra_env)
        return env

    def start_service(self, name: str) -> None:
        self.progress(f"starting {name}…")
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", SERVICES[name]],
            env=self.env(name),
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C in the terminal reaches berth up, which stops the
            # services in order, instead of every process at once.
            start_new_session=True,
            # ...and should berth up itself be killed outright, its services go with it.
            preexec_fn=die_with_parent,
        )

    def wait_ready(self, timeout: float) -> None:
        # In a thread of its own, so that a caller that is itself async can start a suite.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, self._wait_ready(timeout)).result()

    async def _wait_ready(self, timeout: float) -> None:
        from berth.contracts.subjects import rpc_health
        from berth.shared.bus import connect

        nc = await connect(self.nats_url, name="berth-up")
        try:
            deadline = time.monotonic() + timeout
            pending = set(self.procs)
            while pending:
                for name in sorted(pending):
                    proc = self.procs[name]
                    if proc.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}"
                        )
                    try:
                        await nc.request(rpc_health(name), b"{}", timeout=0.5)
                        pending.discard(name)
                        self.progress(f"  {name} ready")
                    except Exception:
                        pass
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}"
                    )
                if pending:
                    await asyncio.sleep(0.2)
        finally:
            await nc.close()

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def supervise(self) -> None:
        """Block until interrupted; restart a service that dies, saying so."""
        while True:
            time.sleep(1)
            for name, proc in list(self.procs.items()):
                if proc.poll() is not None:
                    self.progress(
                        f"[red]{name} exited with {proc.returncode}; restarting[/red]\n"
                        f"{self.log_tail(name, 10)}"
                    )
                    self.start_service(name)

    def stop_service(self, name: str, timeout: float = 15) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for name in list(self.procs):
            self.stop_service(name)
        for server in (self.postgres, self.nats):
            if server is not None:
                server.stop()  # type: ignore[attr-defined]
        self.postgres = self.nats = None


def _preferred(port: int) -> int:
    # The well-known port when free, so other tools find NATS where they expect it.
    return free_port(port)
