"""Writes berth's two Helm charts and the manifests they render for their default values.

    python deploy/helm/generate.py            # write deploy/helm/<chart>/ and deploy/rendered/
    python deploy/helm/generate.py --check    # fail if any written file is out of date

One description is the source of both outputs, so they cannot drift apart: every object is
built here as Python data in which a value that the chart leaves to its values is a marker
(``Val``, ``Block``, ``Fmt``, ``Expr``, ``When``, ``Splice``). One emitter writes that data
twice: as a Helm template, where a marker becomes its Go-template text
(``{{ .Values.services.intake.replicas }}``, ``{{- if .Values.networkPolicies.enabled }}``
around a whole document or an entry, ``toYaml`` for a structure), and as the manifest Helm would
render for the default values, where the marker becomes its default. The values themselves
(``values.yaml`` with its comments, the table in each chart's README) come from the same
documented tree. No template is ever parsed or executed here.

- ``berth``: the control plane (intake, policy, catalog, cluster-sync, ownership, the api
  gateway), NATS from the official chart as a 3-node JetStream cluster, PostgreSQL through a
  CloudNativePG ``Cluster`` or an external database, and the jobs that migrate the schemas and
  declare the streams once per release.
- ``berth-agent``: one cluster's agent (the scheduler-adapter with ``BERTH_CLUSTER_ID``),
  installed into that cluster with RBAC for exactly what it applies, watches and reads.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HELM_DIR = ROOT / "deploy" / "helm"
RENDERED_DIR = ROOT / "deploy" / "rendered"
VERSION = "0.1.0"
# What the rendered manifests assume of `helm install`: the release, its namespace, revision.
RELEASE = {"release": "berth", "namespace": "berth", "revision": 1, "service": "Helm"}
AGENT_RELEASE = {"release": "berth-agent", "namespace": "berth", "revision": 1, "service": "Helm"}
_RELEASE_FIELDS = {
    "release": "Name",
    "namespace": "Namespace",
    "revision": "Revision",
    "service": "Service",
}
NATS_CHART_VERSION = "2.14.2"
NATS_REPOSITORY = "https://nats-io.github.io/k8s/helm/charts/"

# --- markers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Val:
    """A scalar from the values; ``text``: always a string (an environment variable's value)."""

    path: str
    text: bool = False


@dataclass(frozen=True)
class Block:
    """A structure from the values, written with ``toYaml``."""

    path: str


@dataclass(frozen=True)
class Fmt:
    """A string with ``{release}``, ``{namespace}``, ``{revision}``, ``{service}`` and
    ``{v:<path>}`` (a value) in it."""

    text: str


@dataclass(frozen=True)
class Expr:
    """A Go-template expression and what it gives for the default values, written side by
    side; for what the other markers cannot say (a choice between two values)."""

    template: str
    rendered: Callable[[Context], Any]


@dataclass(frozen=True)
class When:
    """An entry (of a mapping or a list) or a whole document that exists only when the value
    at ``path`` is set (``negate``: when it is not)."""

    path: str
    value: Any
    negate: bool = False


@dataclass(frozen=True)
class Splice:
    """List items from the values, appended to a list."""

    path: str


# --- documented values -------------------------------------------------------------------------


@dataclass
class V:
    default: Any
    doc: str


@dataclass
class S:
    doc: str
    children: dict[str, Any] = field(default_factory=dict)


def defaults(tree: S) -> dict[str, Any]:
    return {
        key: defaults(child) if isinstance(child, S) else child.default
        for key, child in tree.children.items()
    }


def leaves(tree: S, prefix: str = "") -> Iterator[tuple[str, V]]:
    for key, child in tree.children.items():
        path = f"{prefix}{key}"
        if isinstance(child, S):
            yield from leaves(child, path + ".")
        else:
            yield path, child


@dataclass
class Context:
    values: dict[str, Any]
    release: dict[str, Any]

    def get(self, path: str) -> Any:
        node: Any = self.values
        for part in path.split("."):
            node = node[part]
        return node


# --- YAML emission -----------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./@:-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED and not text.endswith(":"):
        return text
    return json.dumps(text)


def _go_string(value: Any) -> str:
    # What Go's fmt prints for a value: how `quote` and string interpolation see it.
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _fmt(text: str, ctx: Context | None) -> str:
    def token(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("v:"):
            path = name[2:]
            return _go_string(ctx.get(path)) if ctx else f"{{{{ .Values.{path} }}}}"
        if ctx:
            return str(ctx.release[name])
        return "{{ .Release." + _RELEASE_FIELDS[name] + " }}"

    return re.sub(r"\{([a-z]+|v:[A-Za-z0-9_.]+)\}", token, text)


class Emitter:
    """Writes data with markers as a template (``ctx`` None) or as rendered (``ctx`` given)."""

    def __init__(self, ctx: Context | None) -> None:
        self.ctx = ctx

    @property
    def template(self) -> bool:
        return self.ctx is None

    def holds(self, when: When) -> bool:
        assert self.ctx is not None
        return bool(self.ctx.get(when.path)) != when.negate

    def _if(self, when: When) -> str:
        return f"{{{{- if {'not ' if when.negate else ''}.Values.{when.path} }}}}"

    def inline(self, value: Any) -> str | None:
        """The value on the key's own line, or None when it takes lines of its own."""
        if isinstance(value, Val):
            if self.ctx is None:
                default = TREES_DEFAULTS.get(value.path)
                quote = value.text or isinstance(default, str)
                return f"{{{{ .Values.{value.path}{' | quote' if quote else ''} }}}}"
            found = self.ctx.get(value.path)
            return scalar(_go_string(found) if value.text else found)
        if isinstance(value, Fmt):
            if self.ctx is None:
                return '"' + _fmt(value.text, None) + '"'
            return scalar(_fmt(value.text, self.ctx))
        if isinstance(value, Expr):
            if self.ctx is None:
                return value.template
            return scalar(value.rendered(self.ctx))
        if isinstance(value, Block):
            if self.ctx is None:
                return None
            return self.inline(self.ctx.get(value.path))
        if isinstance(value, dict):
            return "{}" if not value else None
        if isinstance(value, list):
            return "[]" if not value else None
        return scalar(value)

    def mapping(self, data: dict[str, Any], indent: int) -> list[str]:
        pad = " " * indent
        lines: list[str] = []
        for key, value in data.items():
            if isinstance(value, When):
                if self.template:
                    lines.append(pad + self._if(value))
                    lines += self.mapping({key: value.value}, indent)
                    lines.append(pad + "{{- end }}")
                elif self.holds(value):
                    lines += self.mapping({key: value.value}, indent)
                continue
            if isinstance(value, Block) and self.template:
                lines.append(f"{pad}{key}:")
                lines.append(
                    f"{pad}  {{{{- toYaml .Values.{value.path} | nindent {indent + 2} }}}}"
                )
                continue
            if isinstance(value, Block):
                assert self.ctx is not None
                value = self.ctx.get(value.path)
            text = self.inline(value)
            if text is not None:
                lines.append(f"{pad}{key}: {text}")
            elif isinstance(value, dict):
                lines.append(f"{pad}{key}:")
                lines += self.mapping(value, indent + 2)
            else:
                lines.append(f"{pad}{key}:")
                lines += self.sequence(value, indent + 2)
        return lines

    def sequence(self, items: list[Any], indent: int) -> list[str]:
        pad = " " * indent
        lines: list[str] = []
        for item in items:
            if isinstance(item, When):
                if self.template:
                    lines.append(pad + self._if(item))
                    lines += self.sequence([item.value], indent)
                    lines.append(pad + "{{- end }}")
                elif self.holds(item):
                    lines += self.sequence([item.value], indent)
                continue
            if isinstance(item, Splice):
                if self.template:
                    lines.append(f"{pad}{{{{- with .Values.{item.path} }}}}")
                    lines.append(f"{pad}{{{{- toYaml . | nindent {indent} }}}}")
                    lines.append(f"{pad}{{{{- end }}}}")
                else:
                    assert self.ctx is not None
                    lines += self.sequence(list(self.ctx.get(item.path)), indent)
                continue
            if isinstance(item, dict) and item:
                first = next(iter(item.values()))
                assert not isinstance(first, When | Block), "a list item starts with a plain key"
                body = self.mapping(item, indent + 2)
                lines.append(pad + "- " + body[0][indent + 2 :])
                lines += body[1:]
            else:
                text = self.inline(item)
                assert text is not None, item
                lines.append(f"{pad}- {text}")
        return lines

    def document(self, doc: Any) -> list[str] | None:
        if isinstance(doc, When):
            if self.template:
                body = self.document(doc.value)
                assert body is not None
                return [self._if(doc), *body, "{{- end }}"]
            return self.document(doc.value) if self.holds(doc) else None
        return self.mapping(doc, 0)


def write_documents(docs: list[Any], emitter: Emitter) -> str:
    parts = [lines for doc in docs if (lines := emitter.document(doc)) is not None]
    return "".join("---\n" + "\n".join(lines) + "\n" for lines in parts)


def values_yaml(tree: S, indent: int = 0) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for key, child in tree.children.items():
        if lines and indent == 0:
            lines.append("")
        lines += [f"{pad}# {line}" if line else f"{pad}#" for line in child.doc.splitlines()]
        if isinstance(child, S):
            lines.append(f"{pad}{key}:")
            lines += values_yaml(child, indent + 2)
            continue
        rendered = Emitter(Context({}, {}))
        text = rendered.inline(child.default)
        if text is not None:
            lines.append(f"{pad}{key}: {text}")
        elif isinstance(child.default, dict):
            lines.append(f"{pad}{key}:")
            lines += rendered.mapping(child.default, indent + 2)
        else:
            lines.append(f"{pad}{key}:")
            lines += rendered.sequence(child.default, indent + 2)
    return lines


def values_table(tree: S) -> str:
    rows = ["| value | default | meaning |", "|---|---|---|"]
    for path, leaf in leaves(tree):
        default = json.dumps(leaf.default, separators=(", ", ": "))
        doc = " ".join(leaf.doc.split()).replace("|", "\\|").replace("<", "\\<")
        rows.append(f"| `{path}` | `{default}` | {doc} |")
    return "\n".join(rows)


# Defaults of every value path of both charts, for a template's choice of `quote`.
TREES_DEFAULTS: dict[str, Any] = {}


def _register(tree: S) -> None:
    TREES_DEFAULTS.update({path: leaf.default for path, leaf in leaves(tree)})


# --- shared pieces -----------------------------------------------------------------------------

IMAGE_VALUES = S(
    "Images: <registry>/<name>:<tag>, built from deploy/docker/service.Dockerfile (one per\n"
    "service: SERVICE=berth-intake MODULE=berth.intake, ...; the jobs use berth-cli and the\n"
    "services' own images) and pushed to a registry of yours.",
    {
        "registry": V("registry.example.com/berth", "Registry and path the images are pushed to."),
        "tag": V(VERSION, "Image tag of every berth image."),
        "pullPolicy": V("IfNotPresent", "imagePullPolicy of every berth container."),
        "pullSecrets": V([], "imagePullSecrets of every berth pod, e.g. [{name: regcred}]."),
    },
)


def identity_values() -> S:
    return S(
        "Who may act: bearer tokens of people (an OpenID Connect issuer) and of applications\n"
        "(signed by the catalog). Without an issuer every request from a UI is refused.\n"
        "See the README, Authentication: people and applications.",
        {
            "oidc": S(
                "People: the identity provider (Keycloak, Okta, Entra ID, ...).",
                {
                    "issuer": V("", "Issuer URL, exactly as in its tokens (BERTH_OIDC_ISSUER)."),
                    "audience": V("berth", "Audience berth's access tokens carry."),
                    "jwksUrl": V("", "The issuer's keys (BERTH_OIDC_JWKS_URL)."),
                    "emailClaim": V("email", "Claim holding the email."),
                    "groupsClaim": V("groups", "Claim holding the groups."),
                },
            ),
            "applications": S(
                "Applications: tokens the catalog signs.",
                {
                    "issuer": V("berth-applications", "Issuer of application tokens."),
                    "keysSecret": V(
                        "",
                        "Secret with applications.jwks.json (every service verifies with it)\n"
                        "and applications.key (the catalog signs with it); empty: no\n"
                        "application tokens.",
                    ),
                },
            ),
            "tokenLeewaySeconds": V(30, "Clock skew allowed between an issuer and berth."),
        },
    )


TELEMETRY_VALUES = S(
    "Traces.",
    {
        "otlpEndpoint": V(
            "",
            "OTLP/HTTP endpoint of a collector, e.g. http://otel-collector.observability:4318\n"
            "(OTEL_EXPORTER_OTLP_ENDPOINT); empty: none.",
        ),
        "localTraces": V(True, "Also copy spans to the TELEMETRY stream, for `berth trace`."),
    },
)

POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
HEALTH_PORT = 8081
NATS_CREDENTIALS_DIR = "/etc/berth/nats"
APPLICATION_KEYS_DIR = "/etc/berth/applications"


def labels(component: str, chart: str) -> dict[str, Any]:
    return {
        "app.kubernetes.io/name": chart,
        "app.kubernetes.io/instance": Fmt("{release}"),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "berth",
        "app.kubernetes.io/version": VERSION,
        "app.kubernetes.io/managed-by": Fmt("{service}"),
        "helm.sh/chart": f"{chart}-{VERSION}",
    }


def selector(component: str, chart: str) -> dict[str, Any]:
    return {
        "app.kubernetes.io/name": chart,
        "app.kubernetes.io/instance": Fmt("{release}"),
        "app.kubernetes.io/component": component,
    }


def meta(name: str, component: str, chart: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": Fmt(name),
        "namespace": Fmt("{namespace}"),
        "labels": labels(component, chart),
        **extra,
    }


def image(name: str) -> Fmt:
    return Fmt("{v:image.registry}/" + name + ":{v:image.tag}")


def identity_env(*, catalog: bool = False) -> list[Any]:
    env: list[Any] = [
        When(
            "identity.oidc.issuer",
            {"name": "BERTH_OIDC_ISSUER", "value": Val("identity.oidc.issuer")},
        ),
        When(
            "identity.oidc.issuer",
            {"name": "BERTH_OIDC_JWKS_URL", "value": Val("identity.oidc.jwksUrl")},
        ),
        {"name": "BERTH_OIDC_AUDIENCE", "value": Val("identity.oidc.audience")},
        {"name": "BERTH_OIDC_EMAIL_CLAIM", "value": Val("identity.oidc.emailClaim")},
        {"name": "BERTH_OIDC_GROUPS_CLAIM", "value": Val("identity.oidc.groupsClaim")},
        {"name": "BERTH_APPLICATION_ISSUER", "value": Val("identity.applications.issuer")},
        When(
            "identity.applications.keysSecret",
            {
                "name": "BERTH_APPLICATION_JWKS_FILE",
                "value": f"{APPLICATION_KEYS_DIR}/applications.jwks.json",
            },
        ),
        {
            "name": "BERTH_TOKEN_LEEWAY_SECONDS",
            "value": Val("identity.tokenLeewaySeconds", text=True),
        },
    ]
    if catalog:
        env.append(
            When(
                "identity.applications.keysSecret",
                {
                    "name": "BERTH_APPLICATION_SIGNING_KEY",
                    "value": f"{APPLICATION_KEYS_DIR}/applications.key",
                },
            )
        )
    return env


def telemetry_env() -> list[Any]:
    return [
        When(
            "telemetry.otlpEndpoint",
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": Val("telemetry.otlpEndpoint")},
        ),
        {"name": "BERTH_LOCAL_TRACES", "value": Val("telemetry.localTraces", text=True)},
    ]


def database_env() -> dict[str, Any]:
    return {
        "name": "BERTH_DATABASE_URL",
        "valueFrom": {"secretKeyRef": {"name": database_secret(), "key": database_key()}},
    }


def database_secret() -> Expr:
    """The Secret holding the database URL: CloudNativePG's application Secret of the chart's
    Cluster, or the one named for an external database."""

    def rendered(ctx: Context) -> str:
        if ctx.get("database.cnpg.enabled"):
            return f"{ctx.get('database.cnpg.name')}-app"
        return str(ctx.get("database.external.existingSecret"))

    return Expr(
        '{{ ternary (printf "%s-app" .Values.database.cnpg.name) '
        ".Values.database.external.existingSecret .Values.database.cnpg.enabled | quote }}",
        rendered,
    )


def database_key() -> Expr:
    # CloudNativePG's application Secret keeps the URL under "uri".
    def rendered(ctx: Context) -> str:
        return (
            "uri" if ctx.get("database.cnpg.enabled") else str(ctx.get("database.external.urlKey"))
        )

    return Expr(
        '{{ ternary "uri" .Values.database.external.urlKey .Values.database.cnpg.enabled '
        "| quote }}",
        rendered,
    )


def database_values(name: str, database: str, instances: int) -> S:
    return S(
        "PostgreSQL: a CloudNativePG Cluster made by this chart (the operator is installed\n"
        "separately, https://cloudnative-pg.io), or an external database.",
        {
            "cnpg": S(
                "A CloudNativePG Cluster: a primary and streaming replicas, failover by the\n"
                "operator; its application Secret (<name>-app, key uri) holds the URL.",
                {
                    "enabled": V(True, "Make the Cluster; false: use database.external."),
                    "name": V(name, "Name of the Cluster (and prefix of its Secrets/Services)."),
                    "instances": V(
                        instances, "PostgreSQL instances (1 primary, the rest replicas)."
                    ),
                    "database": V(database, "Database (and owner) made at bootstrap."),
                    "imageName": V("", "PostgreSQL image; empty: the operator's default."),
                    "storage": V(
                        {"size": "20Gi"}, "spec.storage of the Cluster (size, storageClass)."
                    ),
                    "resources": V(
                        {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                        "Resources of each instance.",
                    ),
                    "parameters": V(
                        {"max_connections": "300"},
                        "postgresql.conf parameters. Each berth replica keeps up to 10\n"
                        "connections.",
                    ),
                },
            ),
            "external": S(
                "An external database (database.cnpg.enabled=false).",
                {
                    "existingSecret": V(
                        "berth-database",
                        "Secret holding the database URL (postgresql://user:pass@host:5432/db).",
                    ),
                    "urlKey": V("uri", "Key of the URL in that Secret."),
                },
            ),
        },
    )


def cnpg_cluster(chart: str) -> When:
    return When(
        "database.cnpg.enabled",
        {
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Cluster",
            "metadata": {
                "name": Val("database.cnpg.name"),
                "namespace": Fmt("{namespace}"),
                "labels": labels("database", chart),
            },
            "spec": {
                "instances": Val("database.cnpg.instances"),
                "imageName": When("database.cnpg.imageName", Val("database.cnpg.imageName")),
                "bootstrap": {
                    "initdb": {
                        "database": Val("database.cnpg.database"),
                        "owner": Val("database.cnpg.database"),
                    }
                },
                "storage": Block("database.cnpg.storage"),
                "resources": Block("database.cnpg.resources"),
                "postgresql": {"parameters": Block("database.cnpg.parameters")},
                # One instance per node: losing a node loses at most one copy.
                "affinity": {
                    "enablePodAntiAffinity": True,
                    "topologyKey": "kubernetes.io/hostname",
                    "podAntiAffinityType": "required",
                },
                "enablePDB": True,
                # An upgrade moves the primary to an updated replica rather than restarting it.
                "primaryUpdateMethod": "switchover",
            },
        },
    )


def probes_http(path_live: str, path_ready: str, port: str) -> dict[str, Any]:
    return {
        "livenessProbe": {
            "httpGet": {"path": path_live, "port": port},
            "initialDelaySeconds": 5,
            "periodSeconds": Val("probes.periodSeconds"),
            "timeoutSeconds": Val("probes.timeoutSeconds"),
            "failureThreshold": Val("probes.livenessFailureThreshold"),
        },
        "readinessProbe": {
            "httpGet": {"path": path_ready, "port": port},
            "periodSeconds": Val("probes.periodSeconds"),
            "timeoutSeconds": Val("probes.timeoutSeconds"),
            "failureThreshold": Val("probes.readinessFailureThreshold"),
        },
    }


PROBE_VALUES = S(
    "Probes. Every service serves /livez (its event loop answers) and /readyz (started,\n"
    "connected to NATS, and the health rpc's check reads its database) on port 8081, for this\n"
    "pod only; the api gateway serves /healthz on its HTTP port.",
    {
        "periodSeconds": V(10, "Seconds between probes."),
        "timeoutSeconds": V(3, "Seconds a probe may take."),
        "livenessFailureThreshold": V(3, "Failed liveness probes before a restart."),
        "readinessFailureThreshold": V(3, "Failed readiness probes before the pod is unready."),
    },
)

SCHEDULING_VALUES = {
    "podDisruptionBudget": S(
        "A PodDisruptionBudget per Deployment.",
        {
            "enabled": V(True, "Make them."),
            "maxUnavailable": V(1, "Pods of one Deployment a voluntary disruption may take."),
        },
    ),
    "topologySpread": S(
        "Spread each Deployment's replicas over nodes.",
        {
            "enabled": V(True, "Add topologySpreadConstraints."),
            "topologyKey": V("kubernetes.io/hostname", "Spread over this node label."),
            "maxSkew": V(1, "Largest difference of replicas between two domains."),
            "whenUnsatisfiable": V(
                "ScheduleAnyway", "DoNotSchedule refuses to stack replicas on one node."
            ),
        },
    ),
    "nodeSelector": V({}, "nodeSelector of every berth pod."),
    "tolerations": V([], "tolerations of every berth pod."),
    "priorityClassName": V("", "priorityClassName of every berth pod; empty: none."),
}


def spread(component: str, chart: str) -> When:
    return When(
        "topologySpread.enabled",
        [
            {
                "maxSkew": Val("topologySpread.maxSkew"),
                "topologyKey": Val("topologySpread.topologyKey"),
                "whenUnsatisfiable": Val("topologySpread.whenUnsatisfiable"),
                "labelSelector": {"matchLabels": selector(component, chart)},
            }
        ],
    )


def pdb(name: str, component: str, chart: str) -> When:
    return When(
        "podDisruptionBudget.enabled",
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta(name, component, chart),
            "spec": {
                "maxUnavailable": Val("podDisruptionBudget.maxUnavailable"),
                "selector": {"matchLabels": selector(component, chart)},
            },
        },
    )


def pod_common() -> dict[str, Any]:
    return {
        "automountServiceAccountToken": False,
        "securityContext": POD_SECURITY,
        "imagePullSecrets": When("image.pullSecrets", Block("image.pullSecrets")),
        "nodeSelector": Block("nodeSelector"),
        "tolerations": Block("tolerations"),
        "priorityClassName": When("priorityClassName", Val("priorityClassName")),
    }


def deployment(
    *,
    name: str,
    component: str,
    chart: str,
    replicas: str,
    container: dict[str, Any],
    volumes: list[Any],
    service_account: Any = None,
    strategy_surge: bool = True,
) -> dict[str, Any]:
    pod: dict[str, Any] = {**pod_common()}
    if service_account is not None:
        pod["serviceAccountName"] = service_account
        pod["automountServiceAccountToken"] = True
    pod["topologySpreadConstraints"] = spread(component, chart)
    pod["containers"] = [container]
    pod["volumes"] = volumes
    strategy: dict[str, Any]
    if strategy_surge:
        # Old pods serve until the new ones are ready, which they are only once the schema is
        # migrated: an upgrade whose migration fails stops there, on the old version.
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    else:
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(name, component, chart),
        "spec": {
            "replicas": Val(replicas),
            "revisionHistoryLimit": 5,
            "strategy": strategy,
            "selector": {"matchLabels": selector(component, chart)},
            "template": {
                "metadata": {"labels": labels(component, chart)},
                "spec": pod,
            },
        },
    }


def tmp_volume() -> dict[str, Any]:
    return {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}


def nats_volume(secret: Any, role: str) -> dict[str, Any]:
    # Only this role's seed, though the Secret holds every role's.
    return {
        "name": "nats-credentials",
        "secret": {
            "secretName": secret,
            "items": [{"key": f"{role}.nk", "path": f"{role}.nk"}],
            "defaultMode": 0o440,
        },
    }


def application_keys_volume(*, catalog: bool) -> When:
    items = [{"key": "applications.jwks.json", "path": "applications.jwks.json"}]
    if catalog:
        items.append({"key": "applications.key", "path": "applications.key"})
    return When(
        "identity.applications.keysSecret",
        {
            "name": "application-keys",
            "secret": {
                "secretName": Val("identity.applications.keysSecret"),
                "items": items,
                "defaultMode": 0o440,
            },
        },
    )


def common_mounts() -> list[Any]:
    return [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "nats-credentials", "mountPath": NATS_CREDENTIALS_DIR, "readOnly": True},
        When(
            "identity.applications.keysSecret",
            {"name": "application-keys", "mountPath": APPLICATION_KEYS_DIR, "readOnly": True},
        ),
    ]


def network_policy(name: str, component: str, chart: str, spec: dict[str, Any]) -> When:
    return When(
        "networkPolicies.enabled",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta(name, component, chart),
            "spec": spec,
        },
    )


# --- the control plane chart -------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSpec:
    key: str  # in values (a Go-template field name: no dash)
    component: str  # the service's name, its NATS role
    module: str
    cpu: str


CONTROL_PLANE = (
    ServiceSpec("intake", "intake", "berth.intake", "250m"),
    ServiceSpec("policy", "policy", "berth.policy", "100m"),
    ServiceSpec("catalog", "catalog", "berth.catalog", "200m"),
    ServiceSpec("clusterSync", "cluster-sync", "berth.cluster_sync", "100m"),
    ServiceSpec("ownership", "ownership", "berth.ownership", "100m"),
)
CHART = "berth"


def service_values(spec: ServiceSpec, extra: dict[str, Any] | None = None) -> S:
    return S(
        f"The {spec.component} service (python -m {spec.module}).",
        {
            "replicas": V(2, "Replicas; they share its durable consumers and its queries."),
            "resources": V(
                {"requests": {"cpu": spec.cpu, "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                "Container resources (see the README, Running in production: sizing).",
            ),
            **(extra or {}),
            "extraEnv": V([], "More environment variables (BERTH_* settings of this service)."),
        },
    )


def berth_values() -> S:
    services = {spec.key: service_values(spec) for spec in CONTROL_PLANE}
    services["catalog"] = service_values(
        CONTROL_PLANE[2],
        {
            "admin": V("", "The first administrator (BERTH_ADMIN), made when missing."),
            "seedDemo": V(False, "Seed the demo organisation and assets."),
            "clusterId": V(
                "local",
                "The cluster an asset belongs to when neither it nor its department names one\n"
                "(BERTH_CLUSTER_ID).",
            ),
            "keysSecret": V(
                "berth-catalog-keys",
                "Secret holding the catalog's key files (catalog-storage.*.key,\n"
                "catalog-sealing.*.key): lose them and stored credential values are lost.",
            ),
        },
    )
    services["api"] = S(
        "The api gateway and web console (python -m berth.api), as the ui role.",
        {
            "replicas": V(2, "Replicas (stateless)."),
            "resources": V(
                {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                "Container resources.",
            ),
            "serviceType": V("ClusterIP", "Type of its Service (put an Ingress in front)."),
            "port": V(8080, "Port of its Service."),
            "answerTimeoutSeconds": V(30, "How long a request waits for the services' answer."),
            "allowedFrom": V(
                [],
                "NetworkPolicy peers that may reach it (e.g. the ingress controller's\n"
                "namespace); empty: any.",
            ),
            "extraEnv": V([], "More environment variables."),
        },
    )
    return S(
        "",
        {
            "image": IMAGE_VALUES,
            "logLevel": V("INFO", "Log level of every berth process (BERTH_LOG_LEVEL)."),
            "services": S("The control plane's services.", services),
            "bus": S(
                "How berth reaches NATS, and as whom. The keys come from `berth nats-config`\n"
                "(see the README, Running in production).",
                {
                    "url": V(
                        "nats://berth-nats:4222",
                        "NATS URL (the nats subchart's Service unless nats.enabled=false).",
                    ),
                    "credentialsSecret": V(
                        "berth-nats-credentials",
                        "Secret with the role seeds <role>.nk (intake.nk, ..., ui.nk); each pod\n"
                        "mounts only its own.",
                    ),
                    "adminCredentialsSecret": V(
                        "berth-nats-admin",
                        "Secret with admin.nk, mounted only by the streams job.",
                    ),
                    "streamReplicas": V(
                        3, "Copies of each JetStream stream (at most the NATS cluster's size)."
                    ),
                    "streamMaxAgeDays": V(
                        30,
                        "How long the event streams keep an event (keep the services' "
                        "BERTH_INBOX_RETENTION_DAYS, default 31, at least this long).",
                    ),
                    "streamMaxBytes": V(
                        -1,
                        "Size limit of each event stream, oldest dropped first (-1: none; a "
                        "limit can drop events a stopped consumer has not read yet).",
                    ),
                    "telemetryMaxAgeDays": V(7, "How long the TELEMETRY stream keeps spans."),
                    "telemetryMaxBytes": V(
                        1073741824,
                        "Size limit of the TELEMETRY stream, oldest spans dropped first.",
                    ),
                    "allowedAgentsFrom": V(
                        [
                            {
                                "namespaceSelector": {},
                                "podSelector": {
                                    "matchLabels": {"app.kubernetes.io/name": AGENT_CHART}
                                },
                            }
                        ],
                        "NetworkPolicy peers allowed to reach NATS besides this release's pods:\n"
                        "agents (by default those of this cluster, in any namespace; add ipBlocks\n"
                        "of other clusters' nodes or load balancers for theirs).",
                    ),
                },
            ),
            "database": database_values("berth-db", "berth", 3),
            "migrations": S(
                "The job that migrates every service's schema once per release (services run\n"
                "with BERTH_MIGRATE_ON_START=false and wait for it).",
                {
                    "helmHook": V(
                        False,
                        "Run it as a pre-install/pre-upgrade hook. Only with an external\n"
                        "database whose Secret exists before the release: a hook runs before\n"
                        "the chart's CloudNativePG Cluster is made. Otherwise it is a plain Job\n"
                        "per revision, and new pods wait for it.",
                    ),
                    "backoffLimit": V(10, "Retries of the job (the database may still start)."),
                },
            ),
            "identity": identity_values(),
            "telemetry": TELEMETRY_VALUES,
            "probes": PROBE_VALUES,
            **SCHEDULING_VALUES,
            "networkPolicies": S(
                "NetworkPolicies: berth's services accept no connections but probes; NATS\n"
                "accepts berth's pods (and bus.allowedAgentsFrom); PostgreSQL accepts berth's\n"
                "pods and its operator.",
                {
                    "enabled": V(True, "Make them."),
                    "cnpgOperatorNamespace": V(
                        "cnpg-system", "Namespace of the CloudNativePG operator."
                    ),
                },
            ),
            "nats": S(
                "The official NATS chart (nats-io/k8s), as a subchart: a 3-node JetStream\n"
                "cluster whose accounts and permissions are berth's (the Secret\n"
                "berth-nats-server-auth holds the nats-server.conf `berth nats-config` writes).\n"
                "Every value of that chart may be set here.",
                {
                    "enabled": V(True, "Install NATS with berth; false: bus.url points elsewhere."),
                    "fullnameOverride": V("berth-nats", "Name of its Services and StatefulSet."),
                    "config": V(
                        {
                            "cluster": {"enabled": True, "replicas": 3},
                            "jetstream": {
                                "enabled": True,
                                "fileStore": {"pvc": {"size": "20Gi"}},
                            },
                            "merge": {"$include": "../berth-auth/nats-server.conf"},
                        },
                        "nats-server configuration: clustered, JetStream on a volume per node,\n"
                        "berth's accounts included from the mounted Secret.",
                    ),
                    "container": V(
                        {
                            "patch": [
                                {
                                    "op": "add",
                                    "path": "/volumeMounts/-",
                                    "value": {
                                        "name": "berth-auth",
                                        "mountPath": "/etc/berth-auth",
                                        "readOnly": True,
                                    },
                                }
                            ]
                        },
                        "Mounts berth's accounts into the nats container.",
                    ),
                    "podTemplate": V(
                        {
                            "topologySpreadConstraints": {
                                "kubernetes.io/hostname": {
                                    "maxSkew": 1,
                                    "whenUnsatisfiable": "DoNotSchedule",
                                }
                            },
                            "patch": [
                                {
                                    "op": "add",
                                    "path": "/spec/volumes/-",
                                    "value": {
                                        "name": "berth-auth",
                                        "secret": {"secretName": "berth-nats-server-auth"},
                                    },
                                }
                            ],
                        },
                        "One NATS node per Kubernetes node; the accounts Secret as a volume.",
                    ),
                    "natsBox": V(
                        {"enabled": False},
                        "nats-box has no berth key; use `berth` with admin.nk instead.",
                    ),
                },
            ),
        },
    )


def _service_container(spec: ServiceSpec) -> dict[str, Any]:
    env: list[Any] = [
        {"name": "BERTH_NATS_URL", "value": Val("bus.url")},
        {"name": "BERTH_NATS_CREDENTIALS", "value": f"{NATS_CREDENTIALS_DIR}/{spec.component}.nk"},
        database_env(),
        {"name": "BERTH_MIGRATE_ON_START", "value": "false"},
        {"name": "BERTH_HEALTH_PORT", "value": str(HEALTH_PORT)},
        {"name": "BERTH_LOG_LEVEL", "value": Val("logLevel")},
        *identity_env(catalog=spec.key == "catalog"),
        *telemetry_env(),
    ]
    mounts = common_mounts()
    if spec.key == "catalog":
        env += [
            {"name": "BERTH_KEYS_DIR", "value": "/var/lib/berth/keys"},
            {"name": "BERTH_SEED_DEMO", "value": Val("services.catalog.seedDemo", text=True)},
            {"name": "BERTH_CLUSTER_ID", "value": Val("services.catalog.clusterId")},
            When(
                "services.catalog.admin",
                {"name": "BERTH_ADMIN", "value": Val("services.catalog.admin")},
            ),
        ]
        mounts.append(
            {"name": "catalog-keys", "mountPath": "/var/lib/berth/keys", "readOnly": True}
        )
    env.append(Splice(f"services.{spec.key}.extraEnv"))
    return {
        "name": spec.component,
        "image": image(f"berth-{spec.component}"),
        "imagePullPolicy": Val("image.pullPolicy"),
        "ports": [{"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
        "env": env,
        **probes_http("/livez", "/readyz", "health"),
        "resources": Block(f"services.{spec.key}.resources"),
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": mounts,
    }


def berth_documents() -> dict[str, list[Any]]:
    files: dict[str, list[Any]] = {}
    for spec in CONTROL_PLANE:
        volumes: list[Any] = [
            tmp_volume(),
            nats_volume(Val("bus.credentialsSecret"), spec.component),
            application_keys_volume(catalog=spec.key == "catalog"),
        ]
        if spec.key == "catalog":
            volumes.append(
                {
                    "name": "catalog-keys",
                    "secret": {
                        "secretName": Val("services.catalog.keysSecret"),
                        "defaultMode": 0o440,
                    },
                }
            )
        name = "{release}-" + spec.component
        files[f"{spec.component}.yaml"] = [
            deployment(
                name=name,
                component=spec.component,
                chart=CHART,
                replicas=f"services.{spec.key}.replicas",
                container=_service_container(spec),
                volumes=volumes,
            ),
            pdb(name, spec.component, CHART),
        ]

    api_env: list[Any] = [
        {"name": "BERTH_NATS_URL", "value": Val("bus.url")},
        {"name": "BERTH_NATS_CREDENTIALS", "value": f"{NATS_CREDENTIALS_DIR}/ui.nk"},
        {"name": "BERTH_API_HOST", "value": "0.0.0.0"},
        {"name": "BERTH_API_PORT", "value": "8080"},
        {
            "name": "BERTH_ANSWER_TIMEOUT_SECONDS",
            "value": Val("services.api.answerTimeoutSeconds", text=True),
        },
        {"name": "BERTH_LOG_LEVEL", "value": Val("logLevel")},
        *telemetry_env(),
        Splice("services.api.extraEnv"),
    ]
    api_container = {
        "name": "api",
        "image": image("berth-api"),
        "imagePullPolicy": Val("image.pullPolicy"),
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": api_env,
        **probes_http("/healthz", "/healthz", "http"),
        "resources": Block("services.api.resources"),
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "nats-credentials", "mountPath": NATS_CREDENTIALS_DIR, "readOnly": True},
        ],
    }
    files["api.yaml"] = [
        deployment(
            name="{release}-api",
            component="api",
            chart=CHART,
            replicas="services.api.replicas",
            container=api_container,
            volumes=[tmp_volume(), nats_volume(Val("bus.credentialsSecret"), "ui")],
        ),
        pdb("{release}-api", "api", CHART),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta("{release}-api", "api", CHART),
            "spec": {
                "type": Val("services.api.serviceType"),
                "selector": selector("api", CHART),
                "ports": [
                    {
                        "name": "http",
                        "port": Val("services.api.port"),
                        "targetPort": "http",
                        "protocol": "TCP",
                    }
                ],
            },
        },
    ]

    files["database.yaml"] = [cnpg_cluster(CHART)]
    files["migrations.yaml"] = [_migration_job()]
    files["streams.yaml"] = [_streams_job()]
    files["networkpolicies.yaml"] = _berth_network_policies()
    return files


def _job_name(prefix: str, hook_path: str | None) -> Expr:
    if hook_path is None:
        return Expr(
            f'"{{{{ .Release.Name }}}}-{prefix}-{{{{ .Release.Revision }}}}"',
            lambda ctx: f"{ctx.release['release']}-{prefix}-{ctx.release['revision']}",
        )
    return Expr(
        f'"{{{{ .Release.Name }}}}-{prefix}{{{{ if not .Values.{hook_path} }}}}'
        f'-{{{{ .Release.Revision }}}}{{{{ end }}}}"',
        lambda ctx: (
            f"{ctx.release['release']}-{prefix}"
            + ("" if ctx.get(hook_path) else f"-{ctx.release['revision']}")
        ),
    )


HOOK_ANNOTATIONS = {
    "helm.sh/hook": "pre-install,pre-upgrade",
    "helm.sh/hook-weight": "0",
    "helm.sh/hook-delete-policy": "before-hook-creation",
}


def migration_job(*, chart: str, modules: list[tuple[str, str]]) -> dict[str, Any]:
    """One pod, one container per service (each in its own image, which holds its migrations),
    each upgrading its own schema; a failed container is restarted, the whole job retried."""
    containers = [
        {
            "name": component,
            "image": image(f"berth-{component}"),
            "imagePullPolicy": Val("image.pullPolicy"),
            "command": ["python", "-m", "berth.shared.migrations", module],
            "env": [database_env()],
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"memory": "256Mi"},
            },
            "securityContext": CONTAINER_SECURITY,
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }
        for component, module in modules
    ]
    pod = {**pod_common(), "restartPolicy": "OnFailure", "containers": containers}
    pod["volumes"] = [tmp_volume()]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": _job_name("migrate", "migrations.helmHook"),
            "namespace": Fmt("{namespace}"),
            "labels": labels("migrations", chart),
            "annotations": When("migrations.helmHook", HOOK_ANNOTATIONS),
        },
        "spec": {
            "backoffLimit": Val("migrations.backoffLimit"),
            "template": {"metadata": {"labels": labels("migrations", chart)}, "spec": pod},
        },
    }


def _migration_job() -> dict[str, Any]:
    return migration_job(
        chart=CHART, modules=[(spec.component, spec.module) for spec in CONTROL_PLANE]
    )


def _streams_job() -> dict[str, Any]:
    pod = {
        **pod_common(),
        "restartPolicy": "OnFailure",
        "containers": [
            {
                "name": "streams",
                "image": image("berth-cli"),
                "imagePullPolicy": Val("image.pullPolicy"),
                "command": ["python", "-m", "berth.cli", "nats-streams"],
                "env": [
                    {"name": "BERTH_NATS_URL", "value": Val("bus.url")},
                    {
                        "name": "BERTH_NATS_ADMIN_CREDENTIALS",
                        "value": "/etc/berth/nats-admin/admin.nk",
                    },
                    {
                        "name": "BERTH_STREAM_REPLICAS",
                        "value": Val("bus.streamReplicas", text=True),
                    },
                    {
                        "name": "BERTH_STREAM_MAX_AGE_DAYS",
                        "value": Val("bus.streamMaxAgeDays", text=True),
                    },
                    {
                        "name": "BERTH_STREAM_MAX_BYTES",
                        "value": Val("bus.streamMaxBytes", text=True),
                    },
                    {
                        "name": "BERTH_TELEMETRY_MAX_AGE_DAYS",
                        "value": Val("bus.telemetryMaxAgeDays", text=True),
                    },
                    {
                        "name": "BERTH_TELEMETRY_MAX_BYTES",
                        "value": Val("bus.telemetryMaxBytes", text=True),
                    },
                    {"name": "BERTH_HOME", "value": "/tmp/berth"},
                ],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"memory": "256Mi"},
                },
                "securityContext": CONTAINER_SECURITY,
                "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"},
                    {"name": "nats-admin", "mountPath": "/etc/berth/nats-admin", "readOnly": True},
                ],
            }
        ],
        "volumes": [
            tmp_volume(),
            {
                "name": "nats-admin",
                "secret": {
                    "secretName": Val("bus.adminCredentialsSecret"),
                    "items": [{"key": "admin.nk", "path": "admin.nk"}],
                    "defaultMode": 0o440,
                },
            },
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": _job_name("streams", None),
            "namespace": Fmt("{namespace}"),
            "labels": labels("streams", CHART),
        },
        "spec": {
            # NATS may still be forming its cluster: retried with back-off until it answers.
            "backoffLimit": 10,
            "template": {"metadata": {"labels": labels("streams", CHART)}, "spec": pod},
        },
    }


def _database_policy(chart: str, clients: dict[str, Any]) -> When:
    """Who may reach a CloudNativePG cluster's instances: ``clients`` on 5432, the instances
    themselves (replication), and the operator reading their status on 8000."""
    return network_policy(
        "{release}-database",
        "database",
        chart,
        {
            "podSelector": {"matchLabels": {"cnpg.io/cluster": Val("database.cnpg.name")}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"ports": [{"port": 5432, "protocol": "TCP"}], "from": [clients]},
                # Replication between the instances.
                {
                    "ports": [
                        {"port": 5432, "protocol": "TCP"},
                        {"port": 8000, "protocol": "TCP"},
                    ],
                    "from": [
                        {
                            "podSelector": {
                                "matchLabels": {"cnpg.io/cluster": Val("database.cnpg.name")}
                            }
                        }
                    ],
                },
                # The operator reads each instance's status on 8000.
                {
                    "ports": [{"port": 8000, "protocol": "TCP"}],
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {
                                    "kubernetes.io/metadata.name": Val(
                                        "networkPolicies.cnpgOperatorNamespace"
                                    )
                                }
                            }
                        }
                    ],
                },
            ],
        },
    )


def _berth_pods() -> dict[str, Any]:
    return {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": CHART,
                "app.kubernetes.io/instance": Fmt("{release}"),
            }
        }
    }


def _berth_network_policies() -> list[Any]:
    instance = {"app.kubernetes.io/instance": Fmt("{release}")}
    policies: list[Any] = [
        # Services take no connections: they only connect out (probes come from the node).
        network_policy(
            "{release}-services",
            "services",
            CHART,
            {
                "podSelector": {
                    "matchExpressions": [
                        {"key": "app.kubernetes.io/name", "operator": "In", "values": [CHART]},
                        {
                            "key": "app.kubernetes.io/instance",
                            "operator": "In",
                            "values": [Fmt("{release}")],
                        },
                        {
                            "key": "app.kubernetes.io/component",
                            "operator": "NotIn",
                            "values": ["api"],
                        },
                    ]
                },
                "policyTypes": ["Ingress"],
                "ingress": [],
            },
        ),
        network_policy(
            "{release}-api",
            "api",
            CHART,
            {
                "podSelector": {"matchLabels": selector("api", CHART)},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "ports": [{"port": "http", "protocol": "TCP"}],
                        "from": When("services.api.allowedFrom", Block("services.api.allowedFrom")),
                    }
                ],
            },
        ),
        When(
            "nats.enabled",
            network_policy(
                "{release}-nats",
                "nats",
                CHART,
                {
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "nats", **instance}},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {"ports": [{"port": 4222, "protocol": "TCP"}], "from": [_berth_pods()]},
                        When(
                            "bus.allowedAgentsFrom",
                            {
                                "ports": [{"port": 4222, "protocol": "TCP"}],
                                "from": Block("bus.allowedAgentsFrom"),
                            },
                        ),
                        # Routes between the NATS nodes, and their monitoring port (probes and
                        # the config reloader run in the pod itself).
                        {
                            "ports": [
                                {"port": 6222, "protocol": "TCP"},
                                {"port": 8222, "protocol": "TCP"},
                            ],
                            "from": [
                                {
                                    "podSelector": {
                                        "matchLabels": {
                                            "app.kubernetes.io/name": "nats",
                                            **instance,
                                        }
                                    }
                                }
                            ],
                        },
                    ],
                },
            ),
        ),
        When(
            "database.cnpg.enabled",
            _database_policy(CHART, _berth_pods()),
        ),
    ]
    return policies


# --- the agent chart ---------------------------------------------------------------------------

AGENT_CHART = "berth-agent"


def agent_values() -> S:
    return S(
        "",
        {
            "image": IMAGE_VALUES,
            "logLevel": V("INFO", "Log level (BERTH_LOG_LEVEL)."),
            "clusterId": V(
                "local",
                "The cluster this agent serves (BERTH_CLUSTER_ID): one of the --cluster ids\n"
                "given to `berth nats-config`.",
            ),
            "serviceName": V(
                "scheduler-adapter",
                "Its service name: scheduler-adapter for the first cluster given to\n"
                "`berth nats-config`, scheduler-adapter-<cluster id> for every other one.",
            ),
            "replicas": V(
                1,
                "Replicas. More than one needs the agent's leader election (one applies, the\n"
                "others stand by).",
            ),
            "resources": V(
                {"requests": {"cpu": "300m", "memory": "384Mi"}, "limits": {"memory": "768Mi"}},
                "Container resources (see the README: sizing).",
            ),
            "extraEnv": V([], "More environment variables (BERTH_* settings of the agent)."),
            "kube": S(
                "The cluster's API server, reached with the pod's service account.",
                {
                    "qps": V(20, "Sustained API requests per second."),
                    "burst": V(30, "API request burst."),
                    "resyncSeconds": V(300, "Seconds between full re-lists of what it watches."),
                    "configMap": V(
                        "berth-public",
                        "ConfigMap (in the release namespace) of the cluster's berth config.",
                    ),
                },
            ),
            "bus": S(
                "The control plane's NATS, as the scheduler-adapter role.",
                {
                    "url": V(
                        "nats://berth-nats.berth.svc:4222",
                        "NATS URL of the control plane (from another cluster: its external\n"
                        "address).",
                    ),
                    "credentialsSecret": V(
                        "berth-agent-nats-credentials",
                        "Secret with scheduler-adapter.nk (from `berth nats-config`).",
                    ),
                },
            ),
            "database": database_values("berth-agent-db", "berth_agent", 2),
            "migrations": S(
                "The job that migrates the agent's schema once per release.",
                {
                    "helmHook": V(
                        False,
                        "Run it as a pre-install/pre-upgrade hook (external database only).",
                    ),
                    "backoffLimit": V(10, "Retries of the job."),
                },
            ),
            "rbac": S(
                "RBAC: a ClusterRole with exactly what the agent applies, watches and reads,\n"
                "and a Role for its config map and lease in the release namespace.",
                {"create": V(True, "Make the ServiceAccount, roles and bindings.")},
            ),
            "identity": identity_values(),
            "telemetry": TELEMETRY_VALUES,
            "probes": PROBE_VALUES,
            **SCHEDULING_VALUES,
            "networkPolicies": S(
                "NetworkPolicies: the agent accepts no connections but probes; its\n"
                "PostgreSQL accepts the agent and its operator.",
                {
                    "enabled": V(True, "Make them."),
                    "cnpgOperatorNamespace": V(
                        "cnpg-system", "Namespace of the CloudNativePG operator."
                    ),
                },
            ),
        },
    )


# What the agent does with the cluster's API (services/scheduler_adapter/.../kubernetes.py):
# server-side apply (PATCH, creating what is missing: create + patch) of every kind it renders;
# LIST + WATCH of pods and of every top kind, cluster-wide; a foreground DELETE of a workload's
# top object; a merge PATCH to suspend or resume it; the owned objects it applies say
# blockOwnerDeletion, which needs update on the owner's finalizers. Reads: nodes (inventory, the
# CLI's `berth nodes`), pods/log (`berth logs`), Knative's config-features, KAI's scheduling
# shards, priority classes. tests/unit/deploy/test_chart.py checks this table against the code.
TOP_VERBS = ["create", "patch", "list", "watch", "delete"]
OWNED_VERBS = ["create", "patch"]
AGENT_CLUSTER_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
    {
        "apiGroups": [""],
        "resources": ["services", "persistentvolumeclaims", "secrets"],
        "verbs": OWNED_VERBS,
    },
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["config-features"],
        "verbs": ["get"],
    },
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": TOP_VERBS},
    {"apiGroups": ["apps"], "resources": ["statefulsets", "deployments"], "verbs": TOP_VERBS},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": OWNED_VERBS},
    {
        "apiGroups": ["kubeflow.org"],
        "resources": ["pytorchjobs", "tfjobs", "xgboostjobs", "mpijobs"],
        "verbs": TOP_VERBS,
    },
    {"apiGroups": ["serving.knative.dev"], "resources": ["services"], "verbs": TOP_VERBS},
    *(
        {
            "apiGroups": [group],
            "resources": [f"{r}/finalizers" for r in resources],
            "verbs": ["update"],
        }
        for group, resources in (
            ("batch", ["jobs"]),
            ("apps", ["statefulsets", "deployments"]),
            ("kubeflow.org", ["pytorchjobs", "tfjobs", "xgboostjobs", "mpijobs"]),
            ("serving.knative.dev", ["services"]),
        )
    ),
    # Rendered by earlier versions (KAI's podgrouper makes them now): re-applied on a resync.
    {"apiGroups": ["scheduling.run.ai"], "resources": ["podgroups"], "verbs": OWNED_VERBS},
    {"apiGroups": ["kai.scheduler"], "resources": ["schedulingshards"], "verbs": ["list"]},
    {"apiGroups": ["scheduling.k8s.io"], "resources": ["priorityclasses"], "verbs": ["list"]},
]


def agent_documents() -> dict[str, list[Any]]:
    name = "{release}"
    component = "agent"
    lease = Expr(
        '{{ printf "berth-agent-%s" (.Values.clusterId | lower | replace "_" "-") | quote }}',
        lambda ctx: "berth-agent-" + str(ctx.get("clusterId")).lower().replace("_", "-"),
    )
    namespaced_rules = [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [Val("kube.configMap")],
            "verbs": ["get", "patch"],
        },
        # Create cannot be limited by name.
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
        # Leader election between the agent's replicas: one Lease per cluster.
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [lease],
            "verbs": ["get", "update"],
        },
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]
    env: list[Any] = [
        {"name": "BERTH_CLUSTER_ID", "value": Val("clusterId")},
        {"name": "BERTH_SERVICE_NAME", "value": Val("serviceName")},
        {"name": "BERTH_NATS_URL", "value": Val("bus.url")},
        {"name": "BERTH_NATS_CREDENTIALS", "value": f"{NATS_CREDENTIALS_DIR}/scheduler-adapter.nk"},
        database_env(),
        {"name": "BERTH_MIGRATE_ON_START", "value": "false"},
        {"name": "BERTH_HEALTH_PORT", "value": str(HEALTH_PORT)},
        {"name": "BERTH_LOG_LEVEL", "value": Val("logLevel")},
        {"name": "BERTH_KUBE_CONFIG_NAMESPACE", "value": Fmt("{namespace}")},
        {"name": "BERTH_KUBE_CONFIG_MAP", "value": Val("kube.configMap")},
        {"name": "BERTH_KUBE_QPS", "value": Val("kube.qps", text=True)},
        {"name": "BERTH_KUBE_BURST", "value": Val("kube.burst", text=True)},
        {"name": "BERTH_KUBE_RESYNC_SECONDS", "value": Val("kube.resyncSeconds", text=True)},
        # Its key pair: made at start and reported with the cluster's config, so the catalog
        # seals credential values to whatever key this pod holds.
        {"name": "BERTH_KEYS_DIR", "value": "/var/lib/berth/keys"},
        # Its name as the lease's holder: the pod's, unique among live pods and kept when the
        # kubelet restarts the container, so a killed agent takes its lease back at once.
        {
            "name": "BERTH_LEASE_IDENTITY",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
        },
        *identity_env(),
        *telemetry_env(),
        Splice("extraEnv"),
    ]
    container = {
        "name": "agent",
        "image": image("berth-scheduler-adapter"),
        "imagePullPolicy": Val("image.pullPolicy"),
        "ports": [{"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
        "env": env,
        **probes_http("/livez", "/readyz", "health"),
        "resources": Block("resources"),
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [
            *common_mounts(),
            {"name": "agent-keys", "mountPath": "/var/lib/berth/keys"},
        ],
    }
    volumes = [
        tmp_volume(),
        nats_volume(Val("bus.credentialsSecret"), "scheduler-adapter"),
        application_keys_volume(catalog=False),
        {"name": "agent-keys", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
    ]
    rbac_meta = meta(name, component, AGENT_CHART)
    account = Fmt(name)
    files: dict[str, list[Any]] = {
        "agent.yaml": [
            deployment(
                name=name,
                component=component,
                chart=AGENT_CHART,
                replicas="replicas",
                container=container,
                volumes=volumes,
                service_account=account,
                # Never two agents applying at once while the old one stops.
                strategy_surge=False,
            ),
            pdb(name, component, AGENT_CHART),
        ],
        "rbac.yaml": [
            When(
                "rbac.create",
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": rbac_meta,
                    "automountServiceAccountToken": False,
                },
            ),
            When(
                "rbac.create",
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {
                        "name": Fmt("{release}-{namespace}"),
                        "labels": labels(component, AGENT_CHART),
                    },
                    "rules": AGENT_CLUSTER_RULES,
                },
            ),
            When(
                "rbac.create",
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {
                        "name": Fmt("{release}-{namespace}"),
                        "labels": labels(component, AGENT_CHART),
                    },
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": Fmt("{release}-{namespace}"),
                    },
                    "subjects": [
                        {"kind": "ServiceAccount", "name": account, "namespace": Fmt("{namespace}")}
                    ],
                },
            ),
            When(
                "rbac.create",
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": rbac_meta,
                    "rules": namespaced_rules,
                },
            ),
            When(
                "rbac.create",
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": rbac_meta,
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": Fmt(name),
                    },
                    "subjects": [
                        {"kind": "ServiceAccount", "name": account, "namespace": Fmt("{namespace}")}
                    ],
                },
            ),
        ],
        "database.yaml": [cnpg_cluster(AGENT_CHART)],
        "migrations.yaml": [
            migration_job(
                chart=AGENT_CHART, modules=[("scheduler-adapter", "berth.scheduler_adapter")]
            )
        ],
        "networkpolicies.yaml": [
            network_policy(
                name,
                component,
                AGENT_CHART,
                {
                    "podSelector": {"matchLabels": selector(component, AGENT_CHART)},
                    "policyTypes": ["Ingress"],
                    "ingress": [],
                },
            ),
            When(
                "database.cnpg.enabled",
                _database_policy(
                    AGENT_CHART,
                    # The agent and its migration job.
                    {
                        "podSelector": {
                            "matchLabels": {
                                "app.kubernetes.io/name": AGENT_CHART,
                                "app.kubernetes.io/instance": Fmt("{release}"),
                            }
                        }
                    },
                ),
            ),
        ],
    }
    return files


# --- files -------------------------------------------------------------------------------------

GENERATED = "Generated by deploy/helm/generate.py: edit that, not this file."


@dataclass
class Chart:
    name: str
    description: str
    values: S
    documents: Callable[[], dict[str, list[Any]]]
    release: dict[str, Any]
    dependencies: list[dict[str, Any]]
    notes: str


def chart_yaml(chart: Chart) -> str:
    data: dict[str, Any] = {
        "apiVersion": "v2",
        "name": chart.name,
        "description": chart.description,
        "type": "application",
        "version": VERSION,
        "appVersion": VERSION,
        "kubeVersion": ">=1.29.0-0",
    }
    if chart.dependencies:
        data["dependencies"] = chart.dependencies
    lines = Emitter(Context({}, {})).mapping(data, 0)
    return f"# {GENERATED}\n" + "\n".join(lines) + "\n"


def readme(chart: Chart) -> str:
    return (
        f"# {chart.name}\n\n<!-- {GENERATED} -->\n\n{chart.description}\n\n"
        "How to install it, and what the control plane and each agent need first (keys,\n"
        "Secrets, operators): the repository's README, *Running in production*. The manifests\n"
        f"these templates render for the default values are in `deploy/rendered/{chart.name}/`.\n\n"
        "## Values\n\n" + values_table(chart.values) + "\n"
    )


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def render(chart: Chart, overrides: dict[str, Any]) -> dict[str, str]:
    """What each template gives for the default values with ``overrides`` (as ``helm template
    --values``), by template name: for the tests of what the defaults leave out."""
    TREES_DEFAULTS.clear()
    _register(chart.values)
    ctx = Context(_merged(defaults(chart.values), overrides), chart.release)
    return {name: write_documents(docs, Emitter(ctx)) for name, docs in chart.documents().items()}


def outputs(chart: Chart) -> dict[Path, str]:
    TREES_DEFAULTS.clear()
    _register(chart.values)
    ctx = Context(defaults(chart.values), chart.release)
    files: dict[Path, str] = {}
    base = HELM_DIR / chart.name
    files[base / "Chart.yaml"] = chart_yaml(chart)
    files[base / "values.yaml"] = f"# {GENERATED}\n\n" + "\n".join(values_yaml(chart.values)) + "\n"
    files[base / "README.md"] = readme(chart)
    files[base / "templates" / "NOTES.txt"] = chart.notes
    header = f"# {GENERATED}\n"
    for name, docs in chart.documents().items():
        files[base / "templates" / name] = header + write_documents(docs, Emitter(None))
        rendered = write_documents(docs, Emitter(ctx))
        if rendered:
            source = f"# Source: {chart.name}/templates/{name}\n"
            files[RENDERED_DIR / chart.name / name] = header + source + rendered
    return files


NOTES = """\
berth {{ .Chart.AppVersion }} is installed as {{ .Release.Name }} in {{ .Release.Namespace }}.

The jobs {{ .Release.Name }}-streams-{{ .Release.Revision }} (JetStream streams) and
{{ .Release.Name }}-migrate-{{ .Release.Revision }} (schemas) complete before the services are
ready:

  kubectl -n {{ .Release.Namespace }} get jobs,pods \\
    -l app.kubernetes.io/instance={{ .Release.Name }}

Each cluster runs its agent from the berth-agent chart.
"""
AGENT_NOTES = """\
berth's agent for cluster {{ .Values.clusterId }} is installed as {{ .Release.Name }} in
{{ .Release.Namespace }}. Once its schema is migrated it reports the cluster to the control
plane at {{ .Values.bus.url }}: `berth clusters` lists it.
"""

CHARTS = [
    Chart(
        name="berth",
        description="berth's control plane: intake, policy, catalog, cluster-sync, ownership and "
        "the api gateway, on a 3-node NATS JetStream cluster and PostgreSQL (CloudNativePG or "
        "external).",
        values=berth_values(),
        documents=berth_documents,
        release=RELEASE,
        dependencies=[
            {
                "name": "nats",
                "version": NATS_CHART_VERSION,
                "repository": NATS_REPOSITORY,
                "condition": "nats.enabled",
            }
        ],
        notes=NOTES,
    ),
    Chart(
        name="berth-agent",
        description="One cluster's berth agent (the scheduler-adapter with BERTH_CLUSTER_ID), with "
        "RBAC for exactly what it applies and watches, and its own PostgreSQL.",
        values=agent_values(),
        documents=agent_documents,
        release=AGENT_RELEASE,
        dependencies=[],
        notes=AGENT_NOTES,
    ),
]


def all_outputs() -> dict[Path, str]:
    files: dict[Path, str] = {}
    for chart in CHARTS:
        files.update(outputs(chart))
    files[RENDERED_DIR / "README.md"] = (
        f"# Rendered manifests\n\n<!-- {GENERATED} -->\n\n"
        "What `helm template` gives for each chart's default values (release `berth` or\n"
        "`berth-agent`, namespace `berth`, revision 1), written by the same generator as the\n"
        "charts' templates. The tests validate every object here: core kinds with\n"
        "kubernetes-validate (strict), the CloudNativePG `Cluster` against the operator's CRD.\n"
        "The NATS subchart's own objects (its StatefulSet, Services, ConfigMap) are not here:\n"
        "they come from the official chart when Helm installs it.\n"
    )
    return files


def stale(files: dict[Path, str]) -> list[Path]:
    """Files that differ from what the generator writes, and generated files it no longer
    writes."""
    found = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
    for directory in [RENDERED_DIR, *(HELM_DIR / c.name / "templates" for c in CHARTS)]:
        if directory.exists():
            found += [p for p in directory.rglob("*") if p.is_file() and p not in files]
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/helm/generate.py", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    files = all_outputs()
    if args.check:
        out_of_date = stale(files)
        for path in out_of_date:
            print(f"out of date: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if out_of_date else 0
    for path in stale(files):
        if path not in files:
            path.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
