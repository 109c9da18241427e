"""The options of a workload's spec, declared once.

The submit commands take them, and so do the catalog kinds that carry the same fields: a compute
resource is the ``COMPUTE`` options, an environment and a template take the container's. Each
option keeps the name its spec builder reads (``WorkloadFlags``, ``ComputeFlags``).
"""

from __future__ import annotations

from berth.cli.options import Opt

IMAGE = Opt("image", ("--image", "-i"), str | None, "Container image.", "IMAGE")
PULL_POLICY = Opt(
    "pull_policy", ("--image-pull-policy",), str | None, "Always, IfNotPresent or Never.", "POLICY"
)
COMMAND = Opt("command", ("--command",), str | None, "Command of the container.", "COMMAND")
ARGS = Opt("args", ("--args",), str | None, "Arguments of the command.", "ARGS")
ENV = Opt("env", ("--env", "-e"), list[str] | None, "Environment variable (repeat).", "NAME=VALUE")
LABELS = Opt("labels", ("--label",), list[str] | None, "Pod label (repeat).", "KEY=VALUE")
ANNOTATIONS = Opt(
    "annotations", ("--annotation",), list[str] | None, "Pod annotation (repeat).", "KEY=VALUE"
)
NODE_POOLS = Opt(
    "node_pools",
    ("--node-pools",),
    str | None,
    "Node pools in order of priority, comma-separated.",
    "POOLS",
)
OVER_QUOTA = Opt(
    "allow_over_quota",
    ("--allow-over-quota/--within-quota",),
    bool | None,
    "May run beyond the project's deserved quota (preemptible).",
)
DATASOURCES = Opt(
    "datasource", ("--datasource",), list[str] | None, "Data source asset (repeat).", "DATASOURCE"
)

COMPUTE = [
    Opt("gpu", ("--gpu", "-g"), int | None, "Whole GPU devices per pod.", "N"),
    Opt(
        "gpu_portion",
        ("--gpu-portion",),
        float | None,
        "Fraction of one GPU per pod (0-1).",
        "FRACTION",
    ),
    Opt(
        "gpu_memory",
        ("--gpu-memory",),
        str | None,
        "GPU memory of one GPU per pod, e.g. 20G.",
        "QTY",
    ),
    Opt("cpu", ("--cpu",), float | None, "CPU cores per pod.", "CORES"),
    Opt("memory", ("--memory",), str | None, "CPU memory per pod, e.g. 16G.", "QTY"),
    Opt("large_shm", ("--large-shm",), bool, "A large /dev/shm.", default=False),
    Opt(
        "extended",
        ("--extended",),
        list[str] | None,
        "Extended resource (repeat).",
        "RESOURCE=QTY",
    ),
]
"""A pod's compute: what ``ComputeFlags`` reads, and all a compute resource asset is."""
