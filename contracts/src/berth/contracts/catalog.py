"""The asset catalog: organisation (departments, projects, node pools) and reusable assets
(environments, compute resources, data sources, credentials, workload templates).

Every asset has a scope (tenant, cluster, department or project) and is visible to that
scope's subtree. Assets are created, changed and deleted by request-reply (``RPC_CATALOG_*``) or
by ``CatalogAssetRequestedV1`` events; every change becomes a ``CatalogAssetChangedV1``.

Credential values are never in clear on the bus: a client seals them to the catalog's public
key (``RPC_CATALOG_KEYS_GET``) into ``AssetPutRequest.sealedValues``; the catalog keeps them
encrypted at rest and hands them, sealed to the cluster agent's own key, only to the cluster
side that creates their Kubernetes Secret (``RPC_CATALOG_CREDENTIALS_DELIVER``). No event,
answer or error carries a value: assets carry the name of the Secret they become
(``credential_secret_name``, the one name the catalog, intake and rendering all use).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from berth.contracts.envelope import Actor, Event
from berth.contracts.events import Data, PublicKey
from berth.contracts.queries import Query
from berth.contracts.roles import (
    CATALOG,
    UI,
    Consumer,
)
from berth.contracts.spec.base import DNS_LABEL_PATTERN
from berth.contracts.spec.compute import Compute
from berth.contracts.spec.container import EnvironmentVariable, ImagePullPolicy
from berth.contracts.spec.storage import (
    S3,
    ConfigMapVolume,
    Git,
    HostPath,
    Nfs,
    Pvc,
    SecretVolume,
)
from berth.contracts.workload import WORKLOAD_KINDS, WorkloadKind

AssetKind = Literal[
    "department",
    "project",
    "nodepool",
    "environment",
    "compute",
    "datasource",
    "credential",
    "template",
]
# Kinds a submission may name; the rest are organisation.
USABLE_KINDS: tuple[str, ...] = ("environment", "compute", "datasource", "credential", "template")
ScopeKind = Literal["tenant", "cluster", "department", "project"]
DataSourceType = Literal["pvc", "git", "configmap", "s3", "nfs", "hostpath", "secret"]
DataSourceStatus = Literal["No issues found", "Issues found", "No status", "syncing"]
CredentialType = Literal[
    "access-key", "password", "docker-registry", "generic-secret", "huggingface-token"
]
OverQuotaWeight = Literal["None", "Lowest", "Low", "Medium", "High"]
ToolAccess = Literal["everyone", "groups", "users"]

# Data source type -> (key of the workload's storage section, volume model).
DATASOURCE_STORAGE: dict[str, tuple[str, type[BaseModel]]] = {
    "pvc": ("pvc", Pvc),
    "git": ("git", Git),
    "configmap": ("configMapVolume", ConfigMapVolume),
    "s3": ("s3", S3),
    "nfs": ("nfs", Nfs),
    "hostpath": ("hostPath", HostPath),
    "secret": ("secretVolume", SecretVolume),
}
# A data source that needs a credential needs one of this type.
DATASOURCE_CREDENTIAL: dict[str, CredentialType] = {"git": "password", "s3": "access-key"}
# The keys each credential type's Kubernetes Secret holds (the values stay in the catalog).
CREDENTIAL_KEYS: dict[str, tuple[str, ...]] = {
    "access-key": ("AccessKeyId", "SecretKey"),
    "password": ("User", "Password"),
    "docker-registry": ("User", "Password", "Url"),
    "generic-secret": (),
    "huggingface-token": ("HF_TOKEN",),
}
UNUSABLE_STATUSES: frozenset[str] = frozenset({"Issues found", "syncing"})


class AssetModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- organisation ----------------------------------------------------------------------------


class Resource(AssetModel):
    deserved: float = Field(default=0, ge=0, description="Guaranteed quota.")
    limit: float | None = Field(default=None, ge=0, description="Hard cap; none when unset.")
    overQuotaWeight: OverQuotaWeight = Field(
        default="Medium", description="Share of idle capacity beyond the deserved quota."
    )


class NodePoolQuota(AssetModel):
    """A project's quota in one node pool (memory in GB)."""

    nodePool: str = Field(min_length=1)
    gpu: Resource = Field(default_factory=Resource)
    cpu: Resource = Field(default_factory=Resource)
    memory: Resource = Field(default_factory=Resource)


class DepartmentSpec(AssetModel):
    clusterId: str | None = Field(default=None, description="The department's cluster.")
    quota: list[NodePoolQuota] = Field(default_factory=list)


class ProjectSpec(AssetModel):
    department: str | None = Field(default=None, description="Parent department.")
    clusterId: str | None = Field(default=None, description="The catalog's cluster when unset.")
    namespace: str | None = Field(default=None, description="berth-<project> when unset.")
    queue: str | None = Field(default=None, description="Scheduler queue; the project's name.")
    defaultNodePools: list[str] = Field(default_factory=list)
    quota: list[NodePoolQuota] = Field(default_factory=list)


class NodePoolSpec(AssetModel):
    labelKey: str = Field(default="kai.scheduler/node-pool", min_length=1)
    labelValue: str = Field(min_length=1)
    placement: Literal["binpack", "spread"] = "binpack"
    nodeTypes: list[str] = Field(default_factory=list, description="Node types in the pool.")


# --- assets ----------------------------------------------------------------------------------


class Tool(AssetModel):
    """A tool of an environment and who may connect to it."""

    name: str = Field(min_length=1)
    toolType: str = Field(default="custom", description="jupyter-notebook, tensorboard, ...")
    containerPort: int = Field(ge=1, le=65535)
    access: ToolAccess = "everyone"
    groups: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_access(self) -> Self:
        if self.access == "groups" and not self.groups:
            raise ValueError("access 'groups' needs at least one group")
        if self.access == "users" and not self.users:
            raise ValueError("access 'users' needs at least one user")
        return self


class EnvironmentSpec(AssetModel):
    image: str = Field(min_length=1)
    imagePullPolicy: ImagePullPolicy | None = None
    command: str | None = None
    args: str | None = None
    workingDir: str | None = None
    environmentVariables: list[EnvironmentVariable] = Field(default_factory=list)
    runAsUid: int | None = Field(default=None, ge=0)
    runAsGid: int | None = Field(default=None, ge=0)
    tools: list[Tool] = Field(default_factory=list)
    workloadSupportedTypes: list[WorkloadKind] = Field(default_factory=lambda: list(WORKLOAD_KINDS))


class DataSourceSpec(AssetModel):
    type: DataSourceType
    volume: dict[str, Any] = Field(
        description="The storage item as the workload spec takes it (e.g. a pvc's claimName, "
        "path); its name defaults to the data source's."
    )
    credential: str | None = Field(
        default=None, description="Credential asset for a private Git repository or S3 bucket."
    )

    @model_validator(mode="after")
    def _check_volume(self) -> Self:
        _, model = DATASOURCE_STORAGE[self.type]
        model.model_validate(self.volume)
        if self.credential and self.type not in DATASOURCE_CREDENTIAL:
            raise ValueError(f"a {self.type} data source takes no credential")
        return self


class CredentialSpec(AssetModel):
    type: CredentialType
    secretName: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        description="Kubernetes Secret the cluster side creates: always berth-cred-<name>, "
        "filled in by the catalog (another value is refused).",
    )
    keys: list[str] = Field(default_factory=list, description="Keys of a generic secret.")


class TemplateSpec(AssetModel):
    """A named bundle of asset references plus specific values."""

    workloadType: WorkloadKind | None = Field(
        default=None, description="The workload type it is for; any when unset."
    )
    environment: str | None = None
    compute: str | None = None
    dataSources: list[str] = Field(default_factory=list)
    spec: dict[str, Any] = Field(
        default_factory=dict, description="Specific values, in the workload spec's shape."
    )


SPEC_MODELS: dict[str, type[AssetModel]] = {
    "department": DepartmentSpec,
    "project": ProjectSpec,
    "nodepool": NodePoolSpec,
    "environment": EnvironmentSpec,
    "compute": AssetModel,  # validated as the workload spec's Compute, below
    "datasource": DataSourceSpec,
    "credential": CredentialSpec,
    "template": TemplateSpec,
}


def validate_spec(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The spec in canonical form; raises ValueError naming what is wrong."""
    try:
        if kind == "compute":
            return Compute.model_validate(spec).model_dump(mode="json", exclude_none=True)
        model = SPEC_MODELS[kind]
        return model.model_validate(spec).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise ValueError(details) from None


CREDENTIAL_SECRET_PREFIX = "berth-cred-"


def credential_secret_name(name: str) -> str:
    """The Kubernetes Secret a credential becomes: the catalog reports it, intake puts it in
    data source volumes, rendering puts it in secretKeyRefs, the cluster side creates it."""
    return f"{CREDENTIAL_SECRET_PREFIX}{name}"


def credential_of_secret(secret_name: str) -> str | None:
    """The credential a Secret name stands for; None for a Secret berth does not manage."""
    if secret_name.startswith(CREDENTIAL_SECRET_PREFIX):
        return secret_name[len(CREDENTIAL_SECRET_PREFIX) :] or None
    return None


# --- views and queries -----------------------------------------------------------------------


class AssetView(Query):
    """One catalog entry as every answer and event carries it (never a secret value)."""

    id: str
    kind: AssetKind
    name: str
    scope: ScopeKind = "tenant"
    scopeName: str = Field(default="", description="Cluster, department or project; '' = tenant.")
    spec: dict[str, Any] = Field(default_factory=dict)
    status: DataSourceStatus | None = Field(
        default=None, description="Cluster status of a data source."
    )
    statusReason: str = ""
    createdBy: str = ""


class AssetRef(Query):
    kind: AssetKind
    name: str
    scope: ScopeKind | None = Field(default=None, description="Any scope when unset.")
    scopeName: str = ""


class AssetPutRequest(Query):
    actor: Actor
    kind: AssetKind
    name: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63)
    scope: ScopeKind = "tenant"
    scopeName: str = ""
    spec: dict[str, Any] = Field(default_factory=dict)
    status: DataSourceStatus | None = Field(
        default=None, description="Set by the cluster side (or its simulation)."
    )
    statusReason: str = ""
    update: bool = Field(default=False, description="Change an existing asset, not create one.")
    secretValues: dict[str, str] = Field(
        default_factory=dict,
        description="Refused when not empty: values in clear would be readable on the bus; "
        "seal them into sealedValues.",
        repr=False,
    )
    sealedValues: str | None = Field(
        default=None,
        description="Credential values: a JSON object of key to value, sealed (libsodium "
        "sealed box, base64) to the catalog's public key from rpc.catalog.keys.get.v1.",
        repr=False,
    )
    keyId: str | None = Field(
        default=None, description="Id of the catalog key sealedValues is sealed to."
    )


class CatalogKeyRequest(Query):
    """Asks for the catalog's current public key."""


class CatalogKeyReply(Query):
    key: PublicKey


class CredentialDeliveryRequest(Query):
    """The credentials behind Secrets a cluster's workload objects reference in a namespace."""

    clusterId: str = Field(min_length=1)
    namespace: str = Field(min_length=1, description="A project's namespace on that cluster.")
    secretNames: list[str] = Field(description="berth-cred-<credential> names.")


class DeliveredCredential(Query):
    secretName: str
    credentialId: str
    sealedValues: str = Field(
        description="JSON object of key to value, sealed to the cluster's key.", repr=False
    )


class MissingCredential(Query):
    secretName: str
    reason: str


class CredentialDeliveryReply(Query):
    keyId: str | None = Field(default=None, description="The cluster key the values are sealed to.")
    credentials: list[DeliveredCredential] = Field(default_factory=list)
    missing: list[MissingCredential] = Field(default_factory=list)
    error: str | None = None


class AssetDeleteRequest(Query):
    actor: Actor
    ref: AssetRef


class AssetReply(Query):
    asset: AssetView | None = None
    error: str | None = None
    usedBy: list[str] = Field(default_factory=list, description="Who uses the asset.")


class AssetListRequest(Query):
    kind: AssetKind | None = None
    search: str | None = Field(default=None, description="Substring of the name.")
    project: str | None = Field(default=None, description="Only assets visible to this project.")


class AssetListReply(Query):
    assets: list[AssetView] = Field(default_factory=list)


class AssetResolveRequest(Query):
    """Every asset of these kinds and names, in any scope (the caller checks visibility)."""

    refs: list[AssetRef]
    traceparent: str | None = None


# --- events ----------------------------------------------------------------------------------


class AssetRequestedData(Data):
    operation: Literal["create", "update", "delete"]
    kind: AssetKind
    name: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63)
    scope: ScopeKind = "tenant"
    scopeName: str = ""
    spec: dict[str, Any] = Field(default_factory=dict)
    status: DataSourceStatus | None = None
    statusReason: str = ""


class CatalogAssetRequestedV1(Event):
    """A UI asks for an asset change; subject = a request id the client chose. Credentials
    made this way carry no values (values come only by request-reply)."""

    TYPE: ClassVar[str] = "berth.catalog.asset-requested"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (UI,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (Consumer((CATALOG,), "catalog-requests"),)
    data: AssetRequestedData

    @classmethod
    def refused(cls, request: Event, reason: str, *, source: str, actor: Actor) -> Event:
        return CatalogAssetRejectedV1(
            **request.refusal_envelope(source=source, actor=actor),
            data=AssetRejectedData(
                kind=str(request.data_field("kind", "")),
                name=str(request.data_field("name", "")),
                reason=reason,
            ),
        )


class AssetRejectedData(Data):
    kind: str
    name: str
    reason: str
    usedBy: list[str] = Field(default_factory=list)


class CatalogAssetRejectedV1(Event):
    """The catalog refused a requested change; subject = the request's."""

    TYPE: ClassVar[str] = "berth.catalog.asset-rejected"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (CATALOG,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (Consumer((UI,)),)
    data: AssetRejectedData


# --- scope ---------------------------------------------------------------------------------


def project_scopes(project: str, department: str | None, cluster_id: str) -> set[tuple[str, str]]:
    """The scopes whose assets a project sees: itself and every ancestor."""
    scopes = {("tenant", ""), ("cluster", cluster_id), ("project", project)}
    if department:
        scopes.add(("department", department))
    return scopes


def visible_to(asset: AssetView, scopes: set[tuple[str, str]]) -> bool:
    return (asset.scope, asset.scopeName if asset.scope != "tenant" else "") in scopes
