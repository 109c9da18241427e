"""What each catalog kind's ``create`` takes, and how its flags become the entry's spec.

``KINDS`` is the table ``catalog_commands`` builds the commands from: adding a kind, or a flag
to one, is a change here only. Credential values are read from environment variables
(``--value KEY=ENVVAR``, see ``CREDENTIAL_VALUE`` and ``secret_values``) so that they show
neither in the shell history nor in the process list.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer

from berth.cli import spec_options
from berth.cli.common import check_format, fail
from berth.cli.options import Opt
from berth.cli.submission import ComputeFlags, WorkloadFlags, key_values, split

Values = dict[str, Any]


# --- flags shared by several kinds -----------------------------------------------------------

NAME = Opt("name", (), str, "Its name.", "NAME", argument=True, required=True)
SCOPE = [
    Opt(
        "scope",
        ("--scope",),
        str,
        "Who sees it: tenant, cluster, department or project.",
        "SCOPE",
        default="tenant",
    ),
    Opt(
        "scope_name",
        ("--scope-name",),
        str,
        "The cluster, department or project of the scope.",
        "NAME",
        default="",
    ),
]
COMMON = [
    Opt("update", ("--update",), bool, "Change an existing one.", default=False),
    Opt(
        "out",
        ("--output", "-o"),
        str,
        "table, wide, json, yaml or name.",
        "FORMAT",
        default="table",
        callback=check_format,
    ),
    Opt(
        "as_email",
        ("--as",),
        str | None,
        "Act as this identity, one you logged in as (berth login); else the current one.",
        "EMAIL",
    ),
    Opt("nats_url", ("--nats-url",), str | None, "NATS to talk to [env BERTH_NATS_URL].", "URL"),
]
QUOTA = Opt(
    "quota",
    ("--quota",),
    list[str] | None,
    "Per node pool: POOL:gpu=N,cpu=N,memory=GB,weight=None|Lowest|Low|Medium|High (repeat).",
    "QUOTA",
)
CLUSTER = Opt("cluster", ("--cluster",), str | None, "Cluster id.", "CLUSTER")
NODE_POOLS = spec_options.NODE_POOLS
COMMAND = spec_options.COMMAND
ARGS = spec_options.ARGS
ENV = spec_options.ENV

# The credential's value: the one option that carries a secret (read from the environment).
CREDENTIAL_VALUE = Opt(
    "value",
    ("--value",),
    list[str] | None,
    "KEY=ENVVAR: the key's value is read from that environment variable (repeat).",
    "KEY=ENVVAR",
)


def secret_values(values: Values) -> dict[str, str]:
    """The credential's values, from the variables ``--value`` names."""
    found: dict[str, str] = {}
    for pair in key_values(values.get("value"), "--value"):
        variable = pair["value"]
        if variable not in os.environ:
            # The variable's name only: its value must not show in any message.
            raise fail(f"environment variable {variable} is not set", 2)
        found[pair["name"]] = os.environ[variable]
    return found


# --- how each kind's flags become its spec ---------------------------------------------------


def _set(spec: dict[str, Any], pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    spec.update((k, v) for k, v in pairs if v not in (None, ""))
    return spec


def _quota(items: list[str] | None) -> list[dict[str, Any]]:
    """``POOL:gpu=2,cpu=8,memory=32,weight=High`` -> a node pool quota."""
    quotas = []
    for item in items or []:
        pool, _, rest = item.partition(":")
        entry: dict[str, Any] = {"nodePool": pool}
        weight = None
        for part in split(rest):
            key, _, value = part.partition("=")
            if key == "weight":
                weight = value
            elif key in ("gpu", "cpu", "memory"):
                entry[key] = {"deserved": float(value)}
            else:
                raise typer.BadParameter(f"--quota takes gpu, cpu, memory, weight; got {key!r}")
        if weight:
            for key in ("gpu", "cpu", "memory"):
                entry.setdefault(key, {"deserved": 0})["overQuotaWeight"] = weight
        quotas.append(entry)
    return quotas


def _tool(text: str) -> dict[str, Any]:
    """``NAME:TYPE:PORT[:groups=a,b|users=x,y]``."""
    parts = text.split(":", 3)
    if len(parts) < 3 or not parts[2].isdigit():
        raise typer.BadParameter(f"--tool takes NAME:TYPE:PORT[:groups=..|users=..], got {text!r}")
    tool: dict[str, Any] = {"name": parts[0], "toolType": parts[1], "containerPort": int(parts[2])}
    if len(parts) == 4:
        who, _, members = parts[3].partition("=")
        tool["access"] = who
        tool[who] = split(members)
    return tool


def department_spec(v: Values) -> dict[str, Any]:
    return _set({"quota": _quota(v["quota"])}, [("clusterId", v["cluster"])])


def project_spec(v: Values) -> dict[str, Any]:
    spec = {"defaultNodePools": split(v["node_pools"]), "quota": _quota(v["quota"])}
    return _set(
        spec,
        [
            ("department", v["department"]),
            ("clusterId", v["cluster"]),
            ("namespace", v["namespace"]),
            ("queue", v["queue"]),
        ],
    )


def nodepool_spec(v: Values) -> dict[str, Any]:
    return {
        "labelKey": v["label_key"],
        "labelValue": v["label_value"] or v["name"],
        "placement": v["placement"],
        "nodeTypes": split(v["node_types"]),
    }


def environment_spec(v: Values) -> dict[str, Any]:
    spec = WorkloadFlags(
        image=v["image"],
        pull_policy=v["pull_policy"],
        command=v["command"],
        args=v["args"],
        env=v["env"],
    ).spec()
    _set(spec, [("runAsUid", v["uid"]), ("runAsGid", v["gid"])])
    if v["tool"]:
        spec["tools"] = [_tool(t) for t in v["tool"]]
    if v["supports"]:
        spec["workloadSupportedTypes"] = split(v["supports"])
    return spec


def compute_spec(v: Values) -> dict[str, Any]:
    return ComputeFlags(
        gpu=v["gpu"],
        gpu_portion=v["gpu_portion"],
        gpu_memory=v["gpu_memory"],
        cpu=v["cpu"],
        memory=v["memory"],
        large_shm=v["large_shm"],
        extended=v["extended"],
    ).spec()


# Which flags make the volume of each data source type, and the key each becomes.
_VOLUMES: dict[str, list[tuple[str, str]]] = {
    "git": [
        ("repository", "repository"),
        ("path", "path"),
        ("branch", "branch"),
        ("revision", "revision"),
    ],
    "s3": [("bucket", "bucket"), ("path", "path"), ("url", "url")],
    "nfs": [("server", "server"), ("source_path", "path"), ("path", "mountPath")],
    "hostpath": [("source_path", "path"), ("path", "mountPath")],
    "configmap": [("config_map", "configMap"), ("path", "mountPath")],
    "secret": [("secret", "secret"), ("path", "mountPath")],
}


def datasource_spec(v: Values) -> dict[str, Any]:
    kind = v["type_"]
    volume: dict[str, Any]
    if kind == "pvc":
        volume = {"path": v["path"], "existingPvc": not v["new"], "claimName": v["claim_name"]}
        if v["new"] and (v["size"] or v["storage_class"]):
            volume["claimInfo"] = _set(
                {}, [("size", v["size"]), ("storageClass", v["storage_class"])]
            )
    else:
        volume = {key: v[flag] for flag, key in _VOLUMES.get(kind, _VOLUMES["secret"])}
    spec: dict[str, Any] = {
        "type": kind,
        "volume": {k: x for k, x in volume.items() if x is not None},
    }
    return _set(spec, [("credential", v["credential"])])


def credential_spec(v: Values) -> dict[str, Any]:
    return _set({"type": v["type_"], "keys": split(v["keys"])}, [("secretName", v["secret_name"])])


def template_spec(v: Values) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(v["spec_json"]) if v["spec_json"] else {}
    values.update(
        WorkloadFlags(
            command=v["command"],
            args=v["args"],
            env=v["env"],
            labels=v["labels"],
            annotations=v["annotations"],
            node_pools=v["node_pools"],
            allow_over_quota=v["allow_over_quota"],
        ).spec()
    )
    spec: dict[str, Any] = {"dataSources": v["datasource"] or [], "spec": values}
    return _set(
        spec,
        [
            ("workloadType", v["workload_type"]),
            ("environment", v["environment"]),
            ("compute", v["compute"]),
        ],
    )


@dataclass(frozen=True)
class CatalogKind:
    """One catalog kind: its command group, what ``create`` takes, and how that becomes a spec."""

    kind: str
    help: str
    create_help: str
    options: list[Opt]
    spec: Callable[[Values], dict[str, Any]]
    scoped: bool = True

    def create_options(self) -> list[Opt]:
        return [NAME, *self.options, *(SCOPE if self.scoped else []), *COMMON]


KINDS: list[CatalogKind] = [
    CatalogKind(
        "department",
        "Departments: groups of projects.",
        "Create a department.",
        [CLUSTER, QUOTA],
        department_spec,
        scoped=False,
    ),
    CatalogKind(
        "project",
        "Projects. `set` chooses the default one.",
        "Create a project.",
        [
            Opt("department", ("--department", "-d"), str | None, "Its department.", "DEPARTMENT"),
            CLUSTER,
            Opt("namespace", ("--namespace",), str | None, "Kubernetes namespace.", "NAMESPACE"),
            Opt("queue", ("--queue",), str | None, "Scheduler queue.", "QUEUE"),
            NODE_POOLS.but(help="Default node pools, comma-separated."),
            QUOTA,
        ],
        project_spec,
        scoped=False,
    ),
    CatalogKind(
        "nodepool",
        "Node pools of a cluster.",
        "Create a node pool.",
        [
            Opt(
                "label_value",
                ("--label-value",),
                str | None,
                "Node label value (the name).",
                "VALUE",
            ),
            Opt(
                "label_key",
                ("--label-key",),
                str,
                "Node label that marks the pool's nodes.",
                "KEY",
                default="kai.scheduler/node-pool",
            ),
            Opt(
                "placement",
                ("--placement",),
                str,
                "binpack or spread.",
                "PLACEMENT",
                default="binpack",
            ),
            Opt(
                "node_types", ("--node-types",), str | None, "Node types, comma-separated.", "TYPES"
            ),
        ],
        nodepool_spec,
        scoped=False,
    ),
    CatalogKind(
        "environment",
        "Environments: image, tools, runtime settings.",
        "Create an environment.",
        [
            spec_options.IMAGE.but(type=str, required=True),
            spec_options.PULL_POLICY.but(decls=("--pull-policy",)),
            COMMAND,
            ARGS,
            ENV,
            Opt("uid", ("--uid",), int | None, "User id to run as.", "UID"),
            Opt("gid", ("--gid",), int | None, "Group id to run as.", "GID"),
            Opt(
                "tool",
                ("--tool",),
                list[str] | None,
                "A tool and who may connect to it; everyone by default (repeat).",
                "NAME:TYPE:PORT[:groups=a,b|users=x,y]",
            ),
            Opt(
                "supports",
                ("--supports",),
                str | None,
                "Workload types it supports, e.g. workspace,training.",
                "TYPES",
            ),
        ],
        environment_spec,
    ),
    CatalogKind(
        "compute",
        "Compute resources: GPUs, CPU, memory.",
        "Create a compute resource.",
        [
            *spec_options.COMPUTE,
        ],
        compute_spec,
    ),
    CatalogKind(
        "datasource",
        "Data sources. PVC, Git, ConfigMap, S3, NFS, host path or secret.",
        "Create a data source. E.g. --type pvc --claim-name data --path /data.",
        [
            Opt(
                "type_",
                ("--type",),
                str,
                "pvc, git, configmap, s3, nfs, hostpath or secret.",
                "TYPE",
                required=True,
            ),
            Opt("path", ("--path",), str | None, "Container path it is mounted at.", "PATH"),
            Opt("claim_name", ("--claim-name",), str | None, "pvc: the claim.", "CLAIM"),
            Opt("new", ("--new",), bool, "pvc: create a new claim.", default=False),
            Opt("size", ("--size",), str | None, "pvc: new claim size.", "QTY"),
            Opt("storage_class", ("--storage-class",), str | None, "pvc: storage class.", "CLASS"),
            Opt("repository", ("--repository",), str | None, "git: repository URL.", "URL"),
            Opt("branch", ("--branch",), str | None, "git: branch.", "BRANCH"),
            Opt("revision", ("--revision",), str | None, "git: revision.", "REVISION"),
            Opt("bucket", ("--bucket",), str | None, "s3: bucket.", "BUCKET"),
            Opt("url", ("--url",), str | None, "s3: endpoint URL.", "URL"),
            Opt("server", ("--server",), str | None, "nfs: server.", "HOST"),
            Opt("source_path", ("--source-path",), str | None, "nfs export or host path.", "PATH"),
            Opt("config_map", ("--config-map",), str | None, "configmap: its name.", "NAME"),
            Opt("secret", ("--secret",), str | None, "secret: its name.", "NAME"),
            Opt(
                "credential",
                ("--credential",),
                str | None,
                "git/s3: credential asset.",
                "CREDENTIAL",
            ),
            Opt(
                "status",
                ("--status",),
                str | None,
                'Cluster status ("No issues found", "Issues found", "No status", "syncing"); '
                "reported by the cluster side, settable for a simulated cluster.",
                "STATUS",
            ),
            Opt(
                "status_reason",
                ("--status-reason",),
                str,
                "Why, with --status.",
                "TEXT",
                default="",
            ),
        ],
        datasource_spec,
    ),
    CatalogKind(
        "credential",
        "Credentials: their values go only to the cluster.",
        "Create a credential. Its values become a Kubernetes Secret on the cluster.",
        [
            Opt(
                "type_",
                ("--type",),
                str,
                "access-key, password, docker-registry, generic-secret or huggingface-token.",
                "TYPE",
                required=True,
            ),
            CREDENTIAL_VALUE,
            Opt(
                "secret_name",
                ("--secret-name",),
                str | None,
                "Kubernetes Secret to create.",
                "NAME",
            ),
            Opt(
                "keys",
                ("--keys",),
                str | None,
                "generic-secret: its keys, comma-separated.",
                "KEYS",
            ),
        ],
        credential_spec,
    ),
    CatalogKind(
        "template",
        "Workload templates: assets plus specific values.",
        "Create a workload template. Assets plus specific values.",
        [
            Opt(
                "workload_type",
                ("--workload-type",),
                str | None,
                "workspace, training, distributed or inference.",
                "TYPE",
            ),
            Opt("environment", ("--environment",), str | None, "Environment asset.", "ENVIRONMENT"),
            Opt("compute", ("--compute",), str | None, "Compute resource asset.", "COMPUTE"),
            spec_options.DATASOURCES,
            COMMAND,
            ARGS,
            ENV,
            spec_options.LABELS,
            spec_options.ANNOTATIONS,
            NODE_POOLS,
            spec_options.OVER_QUOTA,
            Opt(
                "spec_json", ("--spec-json",), str | None, "More specific values, as JSON.", "JSON"
            ),
        ],
        template_spec,
    ),
]
