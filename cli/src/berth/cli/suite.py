"""The whole suite as separate processes: what ``berth up`` (``make run``) and the end-to-end
tests and benchmark run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from nats.aio.client import Client
from sqlalchemy.engine import make_url

from berth.cli import nats_auth
from berth.cli.embedded import EmbeddedNats, EmbeddedPostgres, die_with_parent, free_port
from berth.contracts.roles import ADMIN

T = TypeVar("T")

SERVICES: dict[str, str] = {
    "catalog": "berth.catalog",
    "cluster-sync": "berth.cluster_sync",
    "ownership": "berth.ownership",
    "policy": "berth.policy",
    "intake": "berth.intake",
    "scheduler-adapter": "berth.scheduler_adapter",
}
AGENT = "scheduler-adapter"


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
        clusters: Sequence[str] = ("local",),
        progress: Callable[[str], None] = lambda _line: None,
        credentials_dir: Path | None = None,
    ) -> None:
        """``credentials_dir`` holds the role credentials of a NATS given by URL (see
        ``nats_auth.ensure_credentials``); an embedded NATS gets its own under ``nats/``."""
        self.state_dir = state_dir
        # A NATS given by URL that authenticates: its role keys (berth nats-config --dir).
        env_dir = os.environ.get("BERTH_NATS_CREDENTIALS_DIR")
        self.credentials_dir = credentials_dir or (Path(env_dir) if env_dir else None)
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
        # The cluster each agent process serves, by service name. The first cluster's agent is
        # "scheduler-adapter", with the suite's database; each further cluster's agent is
        # "scheduler-adapter-<cluster>" (its health subject and log file), with a database of
        # its own: an agent's schema holds its cluster's workloads and its inbox, which two
        # agents must not share (the agent refuses a database another cluster's agent uses).
        self.agents: dict[str, str] = {nats_auth.agent_service(c, clusters): c for c in clusters}
        # Token signing keys: the development issuer's (unless a real identity provider is
        # configured) and the catalog's for application tokens; the services trust both.
        self.identity_dir = state_dir / "identity"
        self.dev_issuer = not os.environ.get("BERTH_OIDC_ISSUER")

    @property
    def nats_url(self) -> str:
        assert self._nats_url
        return self._nats_url

    @property
    def database_url(self) -> str:
        assert self._database_url
        return self._database_url

    @property
    def cluster_id(self) -> str:
        return (
            self.extra_env.get("BERTH_CLUSTER_ID") or os.environ.get("BERTH_CLUSTER_ID") or "local"
        )

    def credentials(self, role: str) -> str | None:
        """The credential (nkey seed file) of ``role``, when NATS authenticates."""
        if self.credentials_dir is None:
            return None
        return str(nats_auth.credential_file(self.credentials_dir, role))

    def start(self, timeout: float = 60.0) -> Suite:

        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.ensure_identity()
        if not self._nats_url:
            self.progress("starting NATS with JetStream (embedded, one credential per role)…")
            # Keys are kept across restarts; the permissions are generated afresh each time.
            self.credentials_dir = self.state_dir / "nats"
            config = nats_auth.ensure_credentials(self.credentials_dir, self.clusters)
            nats = EmbeddedNats(
                self.state_dir / "nats",
                port=_preferred(4222),
                log_file=self.log_dir / "nats-server.log",
                config=config,
            ).start()
            self.nats, self._nats_url = nats, nats.url
        self.progress("declaring the JetStream streams (admin credential)…")
        self.run_async(self._declare_streams())
        if not self._database_url:
            self.progress("starting PostgreSQL (embedded)…")
            pg = EmbeddedPostgres(self.state_dir / "pg").start()
            self.postgres, self._database_url = pg, pg.url
        for name in [*SERVICES, *self.agents]:
            if name not in self.procs:
                self.start_service(name)
        self.wait_ready(timeout)
        return self

    def ensure_identity(self) -> None:
        """The signing keys (kept across restarts) and the key sets the services trust."""
        from berth.cli import dev_issuer
        from berth.shared.identity import SigningKey

        if self.dev_issuer:
            SigningKey.ensure(self.dev_issuer_key)
        SigningKey.ensure(self.identity_dir / dev_issuer.APPLICATIONS_KEY_FILE)

    @property
    def dev_issuer_key(self) -> Path:
        from berth.cli.dev_issuer import KEY_FILE

        return self.identity_dir / KEY_FILE

    def identity_env(self, name: str) -> dict[str, str]:
        """Whom the services trust (see berth.shared.identity): the development issuer, when
        no identity provider is configured, and the catalog's application tokens."""
        from berth.cli import dev_issuer
        from berth.shared.identity import jwks_file

        applications = self.identity_dir / dev_issuer.APPLICATIONS_KEY_FILE
        env = {"BERTH_APPLICATION_JWKS_FILE": str(jwks_file(applications))}
        if self.dev_issuer:
            env.update(
                BERTH_OIDC_ISSUER=dev_issuer.ISSUER,
                BERTH_OIDC_JWKS_FILE=str(jwks_file(self.dev_issuer_key)),
            )
        if name == "catalog":
            env["BERTH_APPLICATION_SIGNING_KEY"] = str(applications)
        return env

    def token(self, email: str, groups: Sequence[str] = ()) -> str:
        """A token of the development issuer (tests and benchmarks act through it)."""
        from berth.cli import dev_issuer

        key = self.dev_issuer_key if self.dev_issuer else dev_issuer.key_file()
        if key is None:
            raise RuntimeError("no development issuer: the suite trusts BERTH_OIDC_ISSUER's")
        return dev_issuer.mint(key, email, tuple(groups))

    @property
    def clusters(self) -> list[str]:
        return list(self.agents.values())

    def add_cluster(self, cluster: str, timeout: float = 90.0) -> str:
        """Start an agent (scheduler-adapter) for one more cluster; returns its service name."""
        name = nats_auth.agent_service(cluster, [*self.clusters, cluster])
        self.agents[name] = cluster
        if isinstance(self.nats, EmbeddedNats) and self.credentials_dir is not None:
            # The new agent's durables, health subject and dead letters need permissions.
            nats_auth.ensure_credentials(self.credentials_dir, self.clusters)
            self.nats.reload()
        self.start_service(name)
        self.wait_ready(timeout)
        return name

    def remove_cluster(self, cluster: str) -> None:
        """Stop that cluster's agent. The cluster stays registered (with its database)."""
        for name in [n for n, c in self.agents.items() if c == cluster]:
            self.stop_service(name)
            self.agents.pop(name, None)

    def agent_database_url(self, cluster: str) -> str:
        """The database of ``cluster``'s agent: the suite's for the first cluster."""
        if self.agents.get(AGENT) == cluster:
            return self.database_url
        url = make_url(self.database_url)
        return url.set(database=f"{url.database}_{cluster}").render_as_string(hide_password=False)

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
        if self.credentials_dir is not None:
            # Every cluster's agent connects as the scheduler-adapter role.
            role = AGENT if name in self.agents else name
            env[nats_auth.CREDENTIALS_ENV] = str(
                nats_auth.credential_file(self.credentials_dir, role)
            )
        else:
            # The caller's own (ui) key is not a service's.
            env.pop(nats_auth.CREDENTIALS_ENV, None)
        if self.inventory:
            env["BERTH_SIM_INVENTORY"] = str(self.inventory)
        # Signing keys go to no service but the catalog (which signs application tokens).
        for secret in ("BERTH_APPLICATION_SIGNING_KEY", "BERTH_DEV_ISSUER_KEY"):
            env.pop(secret, None)
        env.update(self.identity_env(name))
        if self.dev_issuer:
            env.pop("BERTH_OIDC_JWKS_URL", None)
        env.update(self.extra_env)
        if name in self.agents:
            cluster = self.agents[name]
            env.update(
                BERTH_CLUSTER_ID=cluster, BERTH_DATABASE_URL=self.agent_database_url(cluster)
            )
        return env

    def start_service(self, name: str) -> None:
        self.progress(f"starting {name}…")
        if name in self.agents and self.agent_database_url(self.agents[name]) != self.database_url:
            _ensure_database(self.agent_database_url(self.agents[name]))
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", module_of(name)],
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
        self.run_async(self._wait_ready(timeout))

    @staticmethod
    def run_async(coro: Coroutine[Any, Any, T]) -> T:
        # In a thread of its own, so that a caller that is itself async can start a suite.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coro).result()

    async def connect(self, role: str = ADMIN, name: str = "berth-up") -> Client:
        """A connection to the suite's NATS as ``role``."""
        from berth.shared.bus import connect

        return await connect(
            self.nats_url, name=name, credentials=self.credentials(role), role=role
        )

    async def _declare_streams(self) -> None:
        from berth.shared.bus import ensure_streams

        nc = await self.connect(ADMIN)
        try:
            await ensure_streams(nc.jetstream())
        finally:
            await nc.close()

    async def _wait_ready(self, timeout: float) -> None:
        from berth.contracts.subjects import rpc_health

        nc = await self.connect(ADMIN)
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
            if "intake" in self.procs:
                await self._wait_registered(nc, deadline)
        finally:
            await nc.close()

    async def _wait_registered(self, nc: Any, deadline: float) -> None:
        """Until intake knows every running agent's cluster: a submission that came earlier
        would be rejected (its cluster not registered yet)."""
        from berth.contracts.queries import ClusterListReply
        from berth.contracts.subjects import RPC_CLUSTERS_LIST

        pending = {c for name, c in self.agents.items() if name in self.procs}
        while pending:
            try:
                reply = await nc.request(RPC_CLUSTERS_LIST, b"{}", timeout=0.5)
                listed = {
                    c.clusterId for c in ClusterListReply.model_validate_json(reply.data).clusters
                }
                for cluster in sorted(pending & listed):
                    self.progress(f"  cluster {cluster} registered")
                pending -= listed
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"not registered with intake: {', '.join(sorted(pending))}")
            if pending:
                await asyncio.sleep(0.2)

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


def module_of(name: str) -> str:
    """The module a service runs: an agent of any cluster runs the scheduler-adapter."""
    return SERVICES[AGENT] if name.startswith(f"{AGENT}-") else SERVICES[name]


def _ensure_database(url: str) -> None:
    """Create the database ``url`` names unless it exists (connecting to the server's
    ``postgres`` database to do so)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    target = make_url(url)

    async def ensure() -> None:
        engine = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                exists = await conn.scalar(
                    text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
                )
                if not exists:
                    await conn.execute(text(f'CREATE DATABASE "{target.database}"'))
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, ensure()).result()


def _preferred(port: int) -> int:
    # The well-known port when free, so other tools find NATS where they expect it.
    return free_port(port)
