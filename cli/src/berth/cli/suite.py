"""The whole suite as separate processes: what ``berth up`` (``make run``) and the end-to-end
tests and benchmark run."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from nats.aio.client import Client
from sqlalchemy.engine import make_url

from berth.cli import nats_auth
from berth.cli.embedded import (
    EmbeddedNats,
    EmbeddedPostgres,
    die_with_parent,
    free_port,
    nats_cluster,
    port_open,
)
from berth.cli.supervision import PostgresWatchdog, StateLock, Supervisor
from berth.contracts.roles import ADMIN, UI

T = TypeVar("T")

DEFAULT_ADMIN = "admin@example.com"
"""The installation's first System administrator unless BERTH_ADMIN names another."""

SERVICES: dict[str, str] = {
    "catalog": "berth.catalog",
    "cluster-sync": "berth.cluster_sync",
    "ownership": "berth.ownership",
    "policy": "berth.policy",
    "intake": "berth.intake",
    "scheduler-adapter": "berth.scheduler_adapter",
}
AGENT = "scheduler-adapter"
# A simulated cluster runs as "simulated-cluster-<cluster>": its own process, its API server.
SIMULATOR = "simulated-cluster"
SIMULATOR_MODULE = "berth.scheduler_adapter.simulation"
# The agents' client-side rate limit against a simulated cluster: the adapter's default (20
# requests/s) is for a shared production API server; a local one answers as fast as it can.
SIMULATED_KUBE_QPS, SIMULATED_KUBE_BURST = "500", "1000"
# The HTTP gateway (Run:ai's REST API and the web console): a UI of the bus, not a service. It
# connects with the ui credential and is ready when it answers HTTP, not a health query.
API = "api"
API_MODULE = "berth.api"


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
        inventories: Mapping[str, str | Path] | None = None,
        kubeconfigs: Mapping[str, Path] | None = None,
        replicas: int = 1,
        nats_nodes: int = 1,
    ) -> None:
        """``credentials_dir`` holds the role credentials of a NATS given by URL (see
        ``nats_auth.ensure_credentials``); an embedded NATS gets its own under ``nats/``.

        ``replicas``: processes per service and per cluster's agent (they share the work; of an
        agent's, one works and the others stand by). ``nats_nodes``: an embedded NATS of that
        many nodes, one JetStream cluster on loopback, with every stream on each node."""
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
        self.nats: EmbeddedNats | None = None
        self.nats_nodes = nats_nodes
        # Every node of an embedded NATS cluster (nats is the first of them).
        self.nats_servers: list[EmbeddedNats] = []
        self.replicas = replicas
        self.postgres: EmbeddedPostgres | None = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # One suite per state directory: a second one is refused before it touches anything.
        self.lock = StateLock(state_dir)
        self.supervisor = Supervisor(progress)
        self._watchdog: PostgresWatchdog | None = None
        # The cluster each agent process serves, by service name. The first cluster's agent is
        # "scheduler-adapter", with the suite's database; each further cluster's agent is
        # "scheduler-adapter-<cluster>" (its health subject and log file), with a database of
        # its own: an agent's schema holds its cluster's workloads and its inbox, which two
        # agents must not share (the agent refuses a database another cluster's agent uses).
        self.agents: dict[str, str] = {nats_auth.agent_service(c, clusters): c for c in clusters}
        # Each cluster is a simulated one (its own process, state under clusters/<cluster>,
        # with an inventory file or preset name; the suite's inventory for the others) unless
        # a kubeconfig names its API server.
        self.inventories: dict[str, str | Path] = dict(inventories or {})
        self.kubeconfigs: dict[str, Path] = dict(kubeconfigs or {})
        self.simulators: dict[str, str] = {}
        self._simulator_ports: dict[str, int] = {}
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
        """Start what is not running yet; raises ``AlreadyRunning`` when another suite holds
        the state directory (nothing of it is touched then)."""
        self.lock.acquire()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.ensure_identity()
        if not self._nats_url:
            self.progress("starting NATS with JetStream (embedded, one credential per role)…")
            # Keys are kept across restarts; the permissions are generated afresh each time.
            self.credentials_dir = self.state_dir / "nats"
            config = nats_auth.ensure_credentials(self.credentials_dir, self.clusters)
            if self.nats_nodes > 1:
                servers = nats_cluster(
                    self.state_dir / "nats", self.nats_nodes, config=config, log_dir=self.log_dir
                )
            else:
                servers = [
                    EmbeddedNats(
                        self.state_dir / "nats",
                        port=_preferred(4222),
                        log_file=self.log_dir / "nats-server.log",
                        config=config,
                    )
                ]
            for server in servers:
                server.start()
                self._watch_nats(server)
            self.nats, self.nats_servers = servers[0], servers
            # Clients are given every node, and fail over between them.
            self._nats_url = ",".join(server.url for server in servers)
        self.lock.note(nats_url=self.nats_url)
        self.progress("declaring the JetStream streams (admin credential)…")
        self.run_async(self._declare_streams())
        if not self._database_url:
            self.progress("starting PostgreSQL (embedded)…")
            pg = EmbeddedPostgres(self.state_dir / "pg").start()
            self.postgres, self._database_url = pg, pg.url
            # PostgreSQL runs detached: should this process be killed outright, the watchdog
            # shuts it down.
            self._watchdog = PostgresWatchdog(pg.data_dir).start()
        for cluster in self.clusters:
            self._add_simulator(cluster)
        for name in [*self.simulators, *SERVICES, *self.agents]:
            for process in self.processes_of(name):
                if process not in self.procs:
                    self.start_service(process)
        self.wait_ready(timeout)
        self.start_api(timeout)
        return self

    def _watch_nats(self, server: EmbeddedNats) -> None:
        name = nats_process_name(server)
        self.supervisor.watch(
            name, lambda: server.process, server.start, lambda: self.log_tail(name, 5)
        )

    def processes_of(self, name: str) -> list[str]:
        """The processes of service ``name``: itself, and ``name@2``... for further replicas
        (services and agents; a simulated cluster is one process)."""
        if name in self.simulators:
            return [name]
        return [name, *(f"{name}{REPLICA}{k}" for k in range(2, self.replicas + 1))]

    api_port: int | None = None

    @property
    def api_url(self) -> str:
        assert self.api_port is not None
        return f"http://127.0.0.1:{self.api_port}"

    def start_api(self, timeout: float = 60.0) -> str:
        """Start the HTTP gateway (port ``BERTH_API_PORT``, else 8080 when free) and wait
        until it answers; returns its URL."""
        if self.api_port is None:
            wanted = self.extra_env.get("BERTH_API_PORT") or os.environ.get("BERTH_API_PORT")
            self.api_port = int(wanted) if wanted else free_port(8080)
        self.start_service(API)
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.api_port):
            proc = self.procs[API]
            if proc.poll() is not None:
                raise RuntimeError(f"{API} exited with {proc.returncode}:\n{self.log_tail(API)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{API} not answering on port {self.api_port}")
            time.sleep(0.1)
        self.progress(f"  {API} ready on {self.api_url}")
        return self.api_url

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

    def console_login_key(self) -> Path | None:
        """The development issuer's key when the services trust that issuer (the suite's own,
        or the one BERTH_DEV_ISSUER_KEY names for it); None with an identity provider."""
        from berth.cli import dev_issuer

        if self.dev_issuer:
            return self.dev_issuer_key
        if os.environ.get("BERTH_OIDC_ISSUER") == dev_issuer.ISSUER:
            return dev_issuer.key_file()
        return None

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

    def add_cluster(
        self, cluster: str, timeout: float = 90.0, *, inventory: str | Path | None = None
    ) -> str:
        """Start an agent (scheduler-adapter) for one more cluster; returns its service name."""
        name = nats_auth.agent_service(cluster, [*self.clusters, cluster])
        self.agents[name] = cluster
        if self._add_simulator(cluster, inventory):
            self.start_service(simulator_service(cluster))
        if self.nats_servers and self.credentials_dir is not None:
            # The new agent's durables, health subject and dead letters need permissions.
            nats_auth.ensure_credentials(self.credentials_dir, self.clusters)
            for server in self.nats_servers:
                server.reload()
        for process in self.processes_of(name):
            self.start_service(process)
        self.wait_ready(timeout)
        return name

    def remove_cluster(self, cluster: str) -> None:
        """Stop that cluster's agent. The cluster stays registered (with its database)."""
        for name in [n for n, c in self.agents.items() if c == cluster]:
            for process in self.processes_of(name):
                self.stop_service(process)
            self.agents.pop(name, None)
        for name in [n for n, c in self.simulators.items() if c == cluster]:
            self.stop_service(name)
            self.simulators.pop(name, None)

    def _add_simulator(self, cluster: str, inventory: str | Path | None = None) -> bool:
        """Plan a simulated cluster for ``cluster`` unless a kubeconfig names a real one."""
        if cluster in self.kubeconfigs or simulator_service(cluster) in self.simulators:
            return False
        if inventory is not None:
            self.inventories[cluster] = inventory
        self.simulators[simulator_service(cluster)] = cluster
        return True

    def cluster_dir(self, cluster: str) -> Path:
        """Where a simulated cluster keeps its state and writes its kubeconfig."""
        return self.state_dir / "clusters" / cluster

    def kubeconfig(self, cluster: str) -> Path:
        return self.kubeconfigs.get(cluster) or self.cluster_dir(cluster) / "kubeconfig"

    def agent_database_url(self, cluster: str) -> str:
        """The database of ``cluster``'s agent: the suite's for the first cluster."""
        if self.agents.get(AGENT) == cluster:
            return self.database_url
        url = make_url(self.database_url)
        return url.set(database=f"{url.database}_{cluster}").render_as_string(hide_password=False)

    def env(self, process: str) -> dict[str, str]:
        # Replicas of a service are that service: one name on the bus, one queue group.
        name = service_of(process)
        env = dict(os.environ)
        env.update(
            BERTH_NATS_URL=self.nats_url,
            BERTH_DATABASE_URL=self.database_url,
            BERTH_SERVICE_NAME=name,
            BERTH_SIM_SPEED=str(self.sim_speed),
            BERTH_KEYS_DIR=str(self.state_dir / "keys"),
            # The first administrator: BERTH_ADMIN, else the one `berth up` names (whoever
            # logs in as it from the development issuer).
            BERTH_ADMIN=os.environ.get("BERTH_ADMIN") or DEFAULT_ADMIN,
            PYTHONUNBUFFERED="1",
        )
        if self.credentials_dir is not None:
            # Every cluster's agent connects as the scheduler-adapter role.
            role = AGENT if name in self.agents else UI if name == API else name
            env[nats_auth.CREDENTIALS_ENV] = str(
                nats_auth.credential_file(self.credentials_dir, role)
            )
        else:
            # The caller's own (ui) key is not a service's.
            env.pop(nats_auth.CREDENTIALS_ENV, None)
        if name == API and self.api_port is not None:
            env["BERTH_API_PORT"] = str(self.api_port)
        if self.inventory:
            env["BERTH_SIM_INVENTORY"] = str(self.inventory)
        # Signing keys go to no service but the catalog (which signs application tokens) and,
        # with the development issuer, the api (below).
        for secret in ("BERTH_APPLICATION_SIGNING_KEY", "BERTH_DEV_ISSUER_KEY"):
            env.pop(secret, None)
        env.update(self.identity_env(name))
        if self.dev_issuer:
            env.pop("BERTH_OIDC_JWKS_URL", None)
        login_key = self.console_login_key()
        if name == API and login_key is not None:
            # The console's login mints the development issuer's tokens, as `berth login
            # --user` does; with an identity provider it asks for a token instead.
            env["BERTH_DEV_ISSUER_KEY"] = str(login_key)
        env.update(self.extra_env)
        if name in self.agents:
            cluster = self.agents[name]
            env.update(
                BERTH_CLUSTER_ID=cluster,
                BERTH_DATABASE_URL=self.agent_database_url(cluster),
                BERTH_KUBECONFIG=str(self.kubeconfig(cluster)),
            )
            if cluster not in self.kubeconfigs:
                env.setdefault("BERTH_KUBE_QPS", SIMULATED_KUBE_QPS)
                env.setdefault("BERTH_KUBE_BURST", SIMULATED_KUBE_BURST)
            env.pop("BERTH_KUBE_CONTEXT", None)
            env["BERTH_LEASE_IDENTITY"] = self.lease_identity(process)
        return env

    def lease_identity(self, process: str) -> str:
        """The holder name of an agent process in its cluster's lease: the same for every
        process the supervisor starts in that slot (it starts one only once the last one has
        exited), so a restarted agent takes back the lease its dead process held instead of
        waiting it out; distinct between slots, and between suites (one per state directory)
        on one host, which may share a cluster."""
        suite = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:8]
        return f"{socket.gethostname()}-{suite}-{process}"

    def _simulator_command(self, cluster: str) -> list[str]:
        port = self._simulator_ports.get(cluster) or free_port()
        # The same port across restarts: the agents' kubeconfig stays true.
        self._simulator_ports[cluster] = port
        command = [
            sys.executable,
            "-m",
            SIMULATOR_MODULE,
            "--cluster",
            cluster,
            "--state-dir",
            str(self.cluster_dir(cluster)),
            "--port",
            str(port),
            "--speed",
            str(self.sim_speed),
        ]
        inventory = self.inventories.get(cluster) or (
            self.inventory if cluster == self.clusters[0] else None
        )
        if inventory is not None:
            command += ["--inventory", str(inventory)]
        return command

    def _wait_simulator(self, name: str, timeout: float = 60.0) -> None:
        """Until the simulated cluster wrote its kubeconfig: an agent started before would
        find none (or the previous run's)."""
        kubeconfig = self.kubeconfig(self.simulators[name])
        deadline = time.monotonic() + timeout
        while not kubeconfig.exists():
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} wrote no kubeconfig within {timeout:.0f}s")
            time.sleep(0.05)

    def start_service(self, name: str) -> None:
        self.progress(f"starting {name}…")
        service = service_of(name)
        if (
            service in self.agents
            and self.agent_database_url(self.agents[service]) != self.database_url
        ):
            _ensure_database(self.agent_database_url(self.agents[service]))
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115
        if name in self.simulators:
            cluster = self.simulators[name]
            self.cluster_dir(cluster).mkdir(parents=True, exist_ok=True)
            self.kubeconfig(cluster).unlink(missing_ok=True)
            command = self._simulator_command(cluster)
        else:
            command = [sys.executable, "-m", module_of(service)]
        self.procs[name] = subprocess.Popen(
            command,
            env=self.env(name),
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C in the terminal reaches berth up, which stops the
            # services in order, instead of every process at once.
            start_new_session=True,
            # ...and should berth up itself be killed outright, its services go with it.
            preexec_fn=die_with_parent,
        )
        self.supervisor.watch(
            name,
            lambda: self.procs.get(name),
            lambda: self.start_service(name),
            lambda: self.log_tail(name, 10),
        )
        if name in self.simulators:
            self._wait_simulator(name)

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
            if self.nats_nodes == 1:
                await ensure_streams(nc.jetstream())
                return
            # A new cluster answers JetStream requests once its nodes have elected a leader.
            deadline = time.monotonic() + 60
            while True:
                try:
                    await ensure_streams(nc.jetstream(), replicas=min(self.nats_nodes, 3))
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
        finally:
            await nc.close()

    async def _wait_ready(self, timeout: float) -> None:
        from berth.contracts.subjects import rpc_health

        nc = await self.connect(ADMIN)
        try:
            deadline = time.monotonic() + timeout
            # A simulated cluster is not on the bus: ready once it wrote its kubeconfig; the api
            # gateway is ready when it answers HTTP.
            # Any replica's answer says the service is up; every replica must be running.
            pending = {service_of(p) for p in self.procs} - set(self.simulators) - {API}
            while pending:
                for name, proc in self.procs.items():
                    if proc.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}"
                        )
                for name in sorted(pending):
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
            if {"intake", "catalog"} <= set(self.procs):
                await self._wait_administrator(deadline)
        finally:
            await nc.close()

    async def _wait_administrator(self, deadline: float) -> None:
        """Until intake has the administrator's access rules the catalog holds (it announces
        them at its first start): a submission that came earlier would be refused."""
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        admin = self.env("catalog")["BERTH_ADMIN"]
        engine = create_async_engine(self.database_url)
        try:
            while True:
                async with engine.connect() as conn:
                    missing = await conn.scalar(
                        text(
                            "SELECT count(*) FROM catalog.access_rules c "
                            "WHERE c.rule->>'subjectId' = :who AND NOT c.deleted "
                            "AND NOT EXISTS (SELECT 1 FROM intake.access_rules i "
                            "WHERE i.id = c.id AND NOT i.deleted)"
                        ),
                        {"who": admin},
                    )
                if not missing:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"intake never learned that {admin} is administrator")
                await asyncio.sleep(0.1)
        finally:
            await engine.dispose()

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

    def supervise(self, until: Callable[[], bool] = lambda: False, interval: float = 0.2) -> None:
        """Restart the services and nats-server when they die, saying so, until ``until()``
        (or an interrupt). In the thread that started them: on Linux a child is told to end
        when the thread that started it ends."""
        while not until():
            time.sleep(interval)
            self.supervisor.check()

    def stop_service(self, name: str, timeout: float = 15) -> None:
        self.supervisor.forget(name)
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
        for server in self.nats_servers:
            self.supervisor.forget(nats_process_name(server))
        if self.postgres is not None:
            self.postgres.stop()
        for node in self.nats_servers:
            node.stop()
        self.postgres = self.nats = None
        self.nats_servers = []
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        self.lock.release()


REPLICA = "@"


def service_of(process: str) -> str:
    """The service a process is a replica of (``intake@2`` is one of intake's)."""
    return process.split(REPLICA, 1)[0]


def nats_process_name(server: EmbeddedNats) -> str:
    """How the supervisor calls an embedded nats-server: ``nats-server``, or, for a node of a
    cluster, ``nats-server-<n>`` (its log file too)."""
    return f"nats-server-{server.cluster.name.split('-')[-1]}" if server.cluster else "nats-server"


def simulator_service(cluster: str) -> str:
    return f"{SIMULATOR}-{cluster}"


def module_of(name: str) -> str:
    """The module a service runs: an agent of any cluster runs the scheduler-adapter."""
    if name == API:
        return API_MODULE
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
