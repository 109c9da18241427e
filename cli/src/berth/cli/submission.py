"""The one place command-line flags become workload spec values: for submissions, templates
and compute resources alike.

The CLI does not validate: intake does, and names every bad field in its rejection, so the CLI
and every UI get the same answers. Only what a flag's own syntax requires (KEY=VALUE) is checked
here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FRAMEWORKS: dict[str, str] = {"pytorch": "PyTorch", "tf": "TF", "mpi": "MPI", "xgboost": "XGBoost"}


def key_values(items: list[str] | None, flag: str) -> list[dict[str, str]]:
    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} takes KEY=VALUE, got {item!r}")
        out.append({"name": key, "value": value})
    return out


def split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def credential_variables(items: list[str] | None) -> list[dict[str, Any]]:
    """``NAME=CREDENTIAL[:KEY]``: the variable takes that key of a credential asset (the key is
    the variable's name when not given); only the credential's name travels, never its value."""
    out = []
    for pair in key_values(items, "--env-credential"):
        credential, _, key = pair["value"].partition(":")
        if not credential:
            raise ValueError(f"--env-credential takes NAME=CREDENTIAL[:KEY], got {pair['name']}=")
        out.append(
            {"name": pair["name"], "credential": {"name": credential, "key": key or pair["name"]}}
        )
    return out


_ACCESS = {"rwo": "readWriteOnce", "rox": "readOnlyMany", "rwx": "readWriteMany"}


def volume(text: str) -> dict[str, Any]:
    """``PATH:SIZE[:class=NAME,access=rwo|rox|rwx,block,ephemeral]``: a new claim for the
    workload, mounted at PATH (the form's *Volume* pane)."""
    path, _, rest = text.partition(":")
    size, _, extra = rest.partition(":")
    if not path or not size:
        raise ValueError(f"--volume takes PATH:SIZE[:OPTIONS], got {text!r}")
    claim: dict[str, Any] = {"size": size}
    item: dict[str, Any] = {"path": path, "existingPvc": False, "claimInfo": claim}
    for option in split(extra):
        key, _, value = option.partition("=")
        if key == "class" and value:
            claim["storageClass"] = value
        elif key == "access" and value in _ACCESS:
            claim["accessModes"] = {_ACCESS[value]: True}
        elif key == "block" and not value:
            claim["volumeMode"] = "Block"
        elif key == "ephemeral" and not value:
            item["ephemeral"] = True
        else:
            raise ValueError(
                f"--volume options are class=NAME, access=rwo|rox|rwx, block, ephemeral; "
                f"got {option!r}"
            )
    return item


@dataclass
class ComputeFlags:
    gpu: int | None = None
    gpu_portion: float | None = None
    gpu_memory: str | None = None
    cpu: float | None = None
    memory: str | None = None
    large_shm: bool | None = None
    extended: list[str] | None = None

    def spec(self) -> dict[str, Any]:
        compute: dict[str, Any] = {}
        if self.gpu is not None:
            compute["gpuDevicesRequest"] = self.gpu
        # A fraction is of one device: Run:ai's form sends gpuDevicesRequest 1 with it.
        if self.gpu_portion is not None:
            compute.setdefault("gpuDevicesRequest", 1)
            compute.update(gpuRequestType="portion", gpuPortionRequest=self.gpu_portion)
        if self.gpu_memory is not None:
            compute.setdefault("gpuDevicesRequest", 1)
            compute.update(gpuRequestType="memory", gpuMemoryRequest=self.gpu_memory)
        if self.cpu is not None:
            compute["cpuCoreRequest"] = self.cpu
        if self.memory is not None:
            compute["cpuMemoryRequest"] = self.memory
        if self.large_shm:
            compute["largeShmRequest"] = True
        if self.extended:
            compute["extendedResources"] = [
                {"resource": kv["name"], "quantity": kv["value"]}
                for kv in key_values(self.extended, "--extended")
            ]
        return compute


@dataclass
class WorkloadFlags:
    """Spec values from flags; None means "not given" (templates, policies or defaults decide)."""

    image: str | None = None
    pull_policy: str | None = None
    command: str | None = None
    args: str | None = None
    working_dir: str | None = None
    env: list[str] | None = None
    env_credential: list[str] | None = None
    labels: list[str] | None = None
    annotations: list[str] | None = None
    node_pools: str | None = None
    node_type: str | None = None
    volumes: list[str] | None = None
    compute: ComputeFlags = field(default_factory=ComputeFlags)
    allow_over_quota: bool | None = None
    auto_delete_seconds: int | None = None
    backoff_limit: int | None = None
    # training
    completions: int | None = None
    parallelism: int | None = None
    # distributed
    workers: int | None = None
    slots_per_worker: int | None = None
    elastic_min: int | None = None
    elastic_max: int | None = None
    # inference
    serving_port: int | None = None
    serving_protocol: str | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    metric: str | None = None
    metric_threshold: int | None = None
    scale_to_zero_seconds: int | None = None
    model: str | None = None
    model_catalog: str | None = None
    model_credential: str | None = None

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        for key, value in (
            ("image", self.image),
            ("imagePullPolicy", self.pull_policy),
            ("command", self.command),
            ("args", self.args),
            ("workingDir", self.working_dir),
            ("nodeType", self.node_type),
            ("allowOverQuota", self.allow_over_quota),
            ("autoDeletionTimeAfterCompletionSeconds", self.auto_delete_seconds),
            ("backoffLimit", self.backoff_limit),
            ("completions", self.completions),
            ("parallelism", self.parallelism),
            ("numWorkers", self.workers),
            ("slotsPerWorker", self.slots_per_worker),
            ("minReplicas", self.elastic_min),
            ("maxReplicas", self.elastic_max),
        ):
            if value is not None:
                spec[key] = value
        variables = key_values(self.env, "--env") + credential_variables(self.env_credential)
        if variables:
            spec["environmentVariables"] = variables
        for key, values, flag in (
            ("labels", self.labels, "--label"),
            ("annotations", self.annotations, "--annotation"),
        ):
            if values:
                spec[key] = key_values(values, flag)
        if self.node_pools:
            spec["nodePools"] = split(self.node_pools)
        compute = self.compute.spec()
        if compute:
            spec["compute"] = compute
        if self.serving_port is not None or self.serving_protocol is not None:
            spec["servingPort"] = {
                k: v
                for k, v in (("container", self.serving_port), ("protocol", self.serving_protocol))
                if v is not None
            }
        autoscaling = self._autoscaling()
        if autoscaling:
            spec["autoscaling"] = autoscaling
        if self.volumes:
            spec["storage"] = {"pvc": [volume(v) for v in self.volumes]}
        if self.model is not None:
            model: dict[str, Any] = {
                "catalog": self.model_catalog or "huggingface",
                "modelName": self.model,
            }
            if self.model_credential:
                model["credential"] = {"name": self.model_credential}
            spec["model"] = model
        return spec

    def _autoscaling(self) -> dict[str, Any]:
        min_replicas = self.min_replicas
        if self.scale_to_zero_seconds is not None and min_replicas is None:
            min_replicas = 0  # scale-to-zero is minReplicas 0 with a retention period
        return {
            k: v
            for k, v in (
                ("minReplicas", min_replicas),
                ("maxReplicas", self.max_replicas),
                ("metric", self.metric),
                ("metricThreshold", self.metric_threshold),
                ("scaleToZeroRetentionSeconds", self.scale_to_zero_seconds),
            )
            if v is not None
        }


@dataclass
class Submission:
    """Everything a submit command was given, besides who submits it."""

    kind: str
    project: str
    name: str
    flags: WorkloadFlags
    name_prefix: bool = False
    template: str | None = None
    environment: str | None = None
    compute: str | None = None
    datasources: list[str] | None = None
    framework: str | None = None
    master: WorkloadFlags | None = None
    no_master: bool = False

    def body(self) -> dict[str, Any]:
        """The submission as a UI would send it (Run:ai's creation-request shape)."""
        spec = self.flags.spec()
        body: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "useGivenNameAsPrefix": self.name_prefix,
            "projectId": self.project,
            "spec": spec,
        }
        # Asset names: intake resolves them into the spec.
        for key, value in (
            ("template", self.template),
            ("environment", self.environment),
            ("compute", self.compute),
            ("dataSources", self.datasources),
        ):
            if value:
                body[key] = value
        if self.kind == "distributed":
            framework = self.framework or "pytorch"
            # Unknown names pass through so that intake's rejection names them.
            spec["distributedFramework"] = FRAMEWORKS.get(framework.lower(), framework)
            spec.setdefault("numWorkers", 1)
            if self.no_master:
                body["noMaster"] = True
            master = self.master.spec() if self.master is not None else {}
            if master and not self.no_master:
                # The master starts from the workers' spec; its own flags change it.
                worker = {k: v for k, v in spec.items() if k in _MASTER_FIELDS}
                body["masterSpecSameAsWorker"] = False
                merged = {**worker, **master}
                if "compute" in worker and "compute" in master:
                    merged["compute"] = {**worker["compute"], **master["compute"]}
                body["masterSpec"] = merged
        return body


# Fields of a distributed spec that a master spec shares (the rest describe the workers).
_MASTER_FIELDS = frozenset(
    {
        "image",
        "imagePullPolicy",
        "command",
        "args",
        "workingDir",
        "environmentVariables",
        "labels",
        "annotations",
        "nodePools",
        "nodeType",
        "compute",
        "backoffLimit",
        "allowOverQuota",
        "autoDeletionTimeAfterCompletionSeconds",
    }
)
