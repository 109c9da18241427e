"""The Helm charts under deploy/helm and the manifests they render for their default values
(deploy/rendered), checked without a helm binary: the generator that writes both must have
written what is committed, every rendered object must pass its schema, and what the objects
say must match the code they run (settings, roles, migrations, the agent's API calls)."""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
import yaml

from berth.api.config import ApiSettings
from berth.catalog.config import CatalogSettings
from berth.cluster_sync.config import ClusterSyncSettings
from berth.contracts.roles import ROLES
from berth.intake.config import IntakeSettings
from berth.ownership.config import OwnershipSettings
from berth.policy.config import PolicySettings
from berth.scheduler_adapter.backend import is_top
from berth.scheduler_adapter.config import SchedulerAdapterSettings
from berth.scheduler_adapter.kubernetes import RESOURCES, WATCHED
from berth.shared.settings import Settings
from tests.unit.scheduler_adapter.manifest_schemas import CRD_DIR, _closed, crd_versions

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
RENDERED = ROOT / "deploy" / "rendered"
HELM = ROOT / "deploy" / "helm"
# The newest Kubernetes kubernetes-validate knows.
K8S_VERSION = kubernetes_validate.utils.latest_version()
SETTINGS: dict[str, type[Settings]] = {
    "intake": IntakeSettings,
    "policy": PolicySettings,
    "catalog": CatalogSettings,
    "cluster-sync": ClusterSyncSettings,
    "ownership": OwnershipSettings,
    "api": ApiSettings,
    "agent": SchedulerAdapterSettings,
}
MODULES = {
    "intake": "berth.intake",
    "policy": "berth.policy",
    "catalog": "berth.catalog",
    "cluster-sync": "berth.cluster_sync",
    "ownership": "berth.ownership",
    "scheduler-adapter": "berth.scheduler_adapter",
}


# The operators whose custom resources the charts make (tests/data/crds/README.md).
OPERATOR_CRDS = ("postgresql.cnpg.io_clusters.yaml",)


@cache
def crd_validators() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    """Strict, as for the scheduler-adapter's custom resources: an unknown field fails."""
    return {
        key: jsonschema.Draft7Validator(_closed(copy.deepcopy(schema)))
        for name in OPERATOR_CRDS
        for key, schema in crd_versions(CRD_DIR / name).items()
    }


@cache
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("berth_helm_generate", HELM / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def rendered(chart: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for path in sorted((RENDERED / chart).glob("*.yaml")):
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


# Every optional part switched on (or to its other branch), as a team's values file would.
EVERYTHING: dict[str, Any] = {
    "image": {"pullSecrets": [{"name": "regcred"}]},
    "priorityClassName": "berth-critical",
    "identity": {
        "oidc": {
            "issuer": "https://idp.example.com/realms/berth",
            "jwksUrl": "https://idp.example.com/realms/berth/protocol/openid-connect/certs",
        },
        "applications": {"keysSecret": "berth-application-keys"},
    },
    "telemetry": {"otlpEndpoint": "http://otel-collector.observability:4318"},
    "database": {"cnpg": {"imageName": "ghcr.io/cloudnative-pg/postgresql:16"}},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "berth"}],
}
CONTROL_PLANE_EVERYTHING: dict[str, Any] = {
    **EVERYTHING,
    "services": {
        "catalog": {"admin": "admin@example.com"},
        "api": {"allowedFrom": [{"namespaceSelector": {}}]},
        "intake": {"extraEnv": [{"name": "BERTH_BATCH_SIZE", "value": "128"}]},
    },
}
# The other branches: an external database, the migration job as a Helm hook, no subchart.
EXTERNAL = {
    "database": {"cnpg": {"enabled": False}},
    "migrations": {"helmHook": True},
    "nats": {"enabled": False},
    "bus": {"allowedAgentsFrom": []},
}
VARIANTS = [
    ("berth", CONTROL_PLANE_EVERYTHING),
    ("berth", EXTERNAL),
    ("berth-agent", EVERYTHING),
    ("berth-agent", {"database": {"cnpg": {"enabled": False}}, "migrations": {"helmHook": True}}),
    ("berth", {"networkPolicies": {"enabled": False}, "podDisruptionBudget": {"enabled": False}}),
]


def variant(chart: str, overrides: dict[str, Any]) -> list[dict[str, Any]]:
    (found,) = [c for c in generator().CHARTS if c.name == chart]
    objects: list[dict[str, Any]] = []
    for text in generator().render(found, overrides).values():
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def component(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def test_the_committed_charts_and_manifests_are_what_the_generator_writes() -> None:
    gen = generator()
    stale = gen.stale(gen.all_outputs())
    assert not stale, "regenerate with `python deploy/helm/generate.py`: " + ", ".join(
        str(p.relative_to(ROOT)) for p in stale
    )


@pytest.mark.parametrize("chart", ["berth", "berth-agent"])
def test_every_rendered_object_passes_its_schema(chart: str) -> None:
    objects = rendered(chart)
    assert objects
    validators = crd_validators()
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in validators:
            validators[key].validate(obj)
            continue
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize(("chart", "overrides"), VARIANTS)
def test_what_other_values_render_passes_its_schema_too(
    chart: str, overrides: dict[str, Any]
) -> None:
    objects = variant(chart, overrides)
    validators = crd_validators()
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in validators:
            validators[key].validate(obj)
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    for deployment in of_kind(objects, "Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        check_settings(component(deployment), container)


def test_optional_parts_appear_only_when_asked_for() -> None:
    everything = variant("berth", CONTROL_PLANE_EVERYTHING)
    (catalog,) = [d for d in of_kind(everything, "Deployment") if component(d) == "catalog"]
    env = {
        e["name"]: e.get("value")
        for e in catalog["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["BERTH_OIDC_ISSUER"] == "https://idp.example.com/realms/berth"
    assert env["BERTH_APPLICATION_SIGNING_KEY"].endswith("/applications.key")
    assert env["BERTH_ADMIN"] == "admin@example.com"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
    (intake,) = [d for d in of_kind(everything, "Deployment") if component(d) == "intake"]
    assert (
        intake["spec"]["template"]["spec"]["containers"][0]["env"][-1]["name"] == "BERTH_BATCH_SIZE"
    )
    (policy,) = [d for d in of_kind(everything, "Deployment") if component(d) == "policy"]
    names = {e["name"] for e in policy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "BERTH_APPLICATION_SIGNING_KEY" not in names  # the catalog's alone

    external = variant("berth", EXTERNAL)
    assert not of_kind(external, "Cluster")
    (job,) = [j for j in of_kind(external, "Job") if component(j) == "migrations"]
    assert job["metadata"]["name"] == "berth-migrate"
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    secret = job["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]
    assert secret["secretKeyRef"] == {"name": "berth-database", "key": "uri"}
    policies = {p["metadata"]["name"] for p in of_kind(external, "NetworkPolicy")}
    assert policies == {"berth-services", "berth-api"}

    bare = variant(
        "berth", {"networkPolicies": {"enabled": False}, "podDisruptionBudget": {"enabled": False}}
    )
    assert not of_kind(bare, "NetworkPolicy") and not of_kind(bare, "PodDisruptionBudget")


def test_custom_resources_are_checked_against_the_operators_crds() -> None:
    clusters = [o for o in rendered("berth") + rendered("berth-agent") if o["kind"] == "Cluster"]
    assert [c["apiVersion"] for c in clusters] == ["postgresql.cnpg.io/v1"] * 2
    assert ("postgresql.cnpg.io/v1", "Cluster") in crd_validators()
    broken = {**clusters[0], "spec": {**clusters[0]["spec"], "instance": 3}}
    with pytest.raises(Exception, match="instance"):
        crd_validators()[("postgresql.cnpg.io/v1", "Cluster")].validate(broken)


def test_templates_open_and_close_every_block() -> None:
    for path in HELM.glob("*/templates/*.yaml"):
        text = path.read_text()
        opened = len(re.findall(r"\{\{-? (?:if|with|range) ", text))
        assert opened == len(re.findall(r"\{\{-? end \}\}", text)), path


def test_each_service_runs_with_replicas_probes_a_budget_and_a_spread() -> None:
    objects = rendered("berth")
    deployments = {component(d): d for d in of_kind(objects, "Deployment")}
    assert set(deployments) == {"intake", "policy", "catalog", "cluster-sync", "ownership", "api"}
    budgets = {component(p) for p in of_kind(objects, "PodDisruptionBudget")}
    assert budgets == set(deployments)
    for name, deployment in deployments.items():
        assert deployment["spec"]["replicas"] >= 2, name
        pod = deployment["spec"]["template"]["spec"]
        assert pod["topologySpreadConstraints"], name
        (container,) = pod["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        port = {p["name"]: p["containerPort"] for p in container["ports"]}
        probe_port = container["readinessProbe"]["httpGet"]["port"]
        if name == "api":
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert port[probe_port] == int(env["BERTH_API_PORT"])
        else:
            assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert port[probe_port] == int(env["BERTH_HEALTH_PORT"])
            # Only the migration job migrates.
            assert env["BERTH_MIGRATE_ON_START"] == "false"


def _containers() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    found = []
    for obj in rendered("berth") + rendered("berth-agent"):
        if obj["kind"] == "Deployment":
            pod = obj["spec"]["template"]["spec"]
            found += [(component(obj), c, pod) for c in pod["containers"]]
    return found


def check_settings(name: str, container: dict[str, Any]) -> None:
    fields = set(SETTINGS[name].model_fields)
    for entry in container["env"]:
        variable = entry["name"]
        if variable == "OTEL_EXPORTER_OTLP_ENDPOINT":
            continue
        assert variable.startswith("BERTH_"), variable
        assert variable.removeprefix("BERTH_").lower() in fields, f"{name}: {variable}"


def test_every_setting_the_manifests_give_is_one_the_service_reads() -> None:
    for name, container, _pod in _containers():
        check_settings(name, container)


def test_each_pod_mounts_only_its_own_roles_nats_key() -> None:
    for name, container, pod in _containers():
        env = {e["name"]: e.get("value") for e in container["env"]}
        key_file = Path(env["BERTH_NATS_CREDENTIALS"])
        role = key_file.stem
        assert role in ROLES and role != "admin", name
        assert role == {"api": "ui", "agent": "scheduler-adapter"}.get(name, name)
        volume = next(v for v in pod["volumes"] if v["name"] == "nats-credentials")
        assert volume["secret"]["items"] == [{"key": key_file.name, "path": key_file.name}]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "nats-credentials")
        assert mount["mountPath"] == str(key_file.parent) and mount["readOnly"]


def test_the_migration_jobs_migrate_every_schema_once_from_its_own_image() -> None:
    for chart, expected in (
        ("berth", {"intake", "policy", "catalog", "cluster-sync", "ownership"}),
        ("berth-agent", {"scheduler-adapter"}),
    ):
        (job,) = [j for j in of_kind(rendered(chart), "Job") if component(j) == "migrations"]
        containers = job["spec"]["template"]["spec"]["containers"]
        assert {c["name"] for c in containers} == expected
        for container in containers:
            module = container["command"][-1]
            assert container["command"] == ["python", "-m", "berth.shared.migrations", module]
            assert module == MODULES[container["name"]]
            assert container["image"].rsplit("/", 1)[1].startswith(f"berth-{container['name']}:")
            assert importlib.util.find_spec(f"{module}.migrations") is not None


def test_streams_are_declared_at_the_replicas_of_the_nats_cluster() -> None:
    values = yaml.safe_load((HELM / "berth" / "values.yaml").read_text())
    assert values["nats"]["config"]["cluster"]["replicas"] == 3
    assert values["nats"]["config"]["jetstream"]["enabled"]
    assert values["bus"]["streamReplicas"] == 3
    (job,) = [j for j in of_kind(rendered("berth"), "Job") if component(j) == "streams"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BERTH_STREAM_REPLICAS"] == "3"
    chart = yaml.safe_load((HELM / "berth" / "Chart.yaml").read_text())
    assert [d["name"] for d in chart["dependencies"]] == ["nats"]
    assert chart["dependencies"][0]["repository"] == "https://nats-io.github.io/k8s/helm/charts/"


def _allowed(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule["apiGroups"]
        and resource in rule["resources"]
        and verb in rule["verbs"]
        and "resourceNames" not in rule
        for rule in rules
    )


def test_the_agent_may_do_exactly_what_its_code_does_with_the_cluster_api() -> None:
    (role,) = of_kind(rendered("berth-agent"), "ClusterRole")
    rules = role["rules"]
    granted = {
        (group, resource, verb)
        for rule in rules
        if "resourceNames" not in rule
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    wanted: set[tuple[str, str, str]] = set()
    for resource in RESOURCES.values():
        group = resource.api_version.rpartition("/")[0]
        if resource.kind == "ConfigMap":
            continue  # only the agent's own config map, in its namespace (the Role)
        obj = {"apiVersion": resource.api_version, "kind": resource.kind}
        if resource.kind != "Pod":  # pods are watched, never applied
            wanted |= {(group, resource.plural, "create"), (group, resource.plural, "patch")}
        if resource in WATCHED:
            wanted |= {(group, resource.plural, "list"), (group, resource.plural, "watch")}
        if is_top(obj) and resource.kind != "Pod":
            wanted |= {
                (group, resource.plural, "delete"),
                (group, f"{resource.plural}/finalizers", "update"),
            }
    wanted |= {
        ("", "pods/log", "get"),
        ("", "nodes", "list"),
        ("kai.scheduler", "schedulingshards", "list"),
        ("scheduling.k8s.io", "priorityclasses", "list"),
    }
    assert granted == wanted
    assert not _allowed(rules, "", "secrets", "get")
    assert not _allowed(rules, "", "configmaps", "get")

    (namespaced,) = of_kind(rendered("berth-agent"), "Role")
    (deployment,) = of_kind(rendered("berth-agent"), "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["BERTH_KUBE_CONFIG_NAMESPACE"] == namespaced["metadata"]["namespace"]
    names = {n for rule in namespaced["rules"] for n in rule.get("resourceNames", ())}
    assert env["BERTH_KUBE_CONFIG_MAP"] in names
    (binding,) = of_kind(rendered("berth-agent"), "ClusterRoleBinding")
    assert (
        binding["subjects"][0]["name"]
        == deployment["spec"]["template"]["spec"]["serviceAccountName"]
    )


def test_services_take_no_connections_and_nats_only_berths() -> None:
    policies = {
        p["metadata"]["name"]: p["spec"] for p in of_kind(rendered("berth"), "NetworkPolicy")
    }
    assert policies["berth-services"]["ingress"] == []
    nats = policies["berth-nats"]
    client_rules = [r for r in nats["ingress"] if {"port": 4222, "protocol": "TCP"} in r["ports"]]
    assert all(r.get("from") for r in client_rules)


# Maps under these keys of the nats chart's values are free-form (its `merge`, its JSON patches
# and its topology spread by key): what berth puts there is nats-server's or Kubernetes'.
FREE_FORM = {"merge", "patch", "topologySpreadConstraints"}


def _unknown_keys(ours: Any, theirs: Any, path: str = "") -> list[str]:
    if not isinstance(ours, dict):
        return []
    if not isinstance(theirs, dict):
        return [path]
    found = []
    for key, value in ours.items():
        where = f"{path}.{key}" if path else key
        if key not in theirs:
            found.append(where)
        elif key not in FREE_FORM:
            found += _unknown_keys(value, theirs[key], where)
    return found


def test_every_nats_chart_value_berth_sets_is_one_the_chart_has() -> None:
    gen = generator()
    chart = yaml.safe_load((HELM / "berth" / "Chart.yaml").read_text())
    (nats,) = chart["dependencies"]
    upstream = ROOT / "tests" / "data" / "charts" / f"nats-{nats['version']}.values.yaml"
    assert nats["version"] == gen.NATS_CHART_VERSION and upstream.exists()
    theirs = yaml.safe_load(upstream.read_text())
    ours = yaml.safe_load((HELM / "berth" / "values.yaml").read_text())["nats"]
    ours.pop("enabled")  # the dependency's condition, berth's own
    assert _unknown_keys(ours, theirs) == []
    # berth's accounts: the Secret mounted where the include looks for it (relative to
    # /etc/nats-config/nats.conf, the chart's configuration file).
    (mount,) = [p["value"] for p in ours["container"]["patch"]]
    (volume,) = [p["value"] for p in ours["podTemplate"]["patch"]]
    assert mount["name"] == volume["name"]
    included = Path("/etc/nats-config") / ours["config"]["merge"]["$include"]
    assert included.resolve() == Path(mount["mountPath"]) / "nats-server.conf"
