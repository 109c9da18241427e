"""Workload policies: the document administrators store, its events and its queries.

A policy belongs to one workload type (workspace, training, distributed, inference) and one
scope (tenant, cluster, department, project). It has three parts, as in Run:ai's V2 policies:
``defaults`` (values filled in when a submission leaves a field unset), ``rules`` (constraints
checked on every submission) and ``imposedAssets`` (data sources added to every workload).

Field paths mirror the workload spec: ``compute.gpuDevicesRequest``, ``nodePools``,
``environmentVariables``. Distributed policies put them under ``worker.`` and ``master.``.
``defaults`` and ``rules`` may be nested (``compute: {gpuDevicesRequest: {max: 2}}``) or use
dotted keys (``compute.gpuDevicesRequest: {max: 2}``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from berth.contracts.envelope import Actor, Event
from berth.contracts.events import Data, Issue
from berth.contracts.queries import Query
from berth.contracts.roles import (
    POLICY,
    UI,
    Consumer,
)
from berth.contracts.workload import WORKLOAD_KINDS, WorkloadKind

# A policy is per workload kind: the same list as the submission union's.
PolicyType = WorkloadKind
PolicyScope = Literal["tenant", "cluster", "department", "project"]
PolicyAction = Literal["apply", "patch", "delete"]
PolicyChange = Literal["applied", "patched", "deleted"]

SCOPES: tuple[PolicyScope, ...] = ("tenant", "cluster", "department", "project")
"""Broadest first: the order in which policies combine down the organisation tree."""

POLICY_TYPES: tuple[PolicyType, ...] = WORKLOAD_KINDS


class ScopeRef(Data):
    """One node of the organisation tree: ``department research``, ``tenant``."""

    scope: PolicyScope
    id: str = Field(
        default="", description="Cluster, department or project name; empty for tenant."
    )

    def __str__(self) -> str:
        return self.scope if self.scope == "tenant" else f"{self.scope} {self.id}"


class PolicyMeta(Data):
    """Where a policy applies (Run:ai's ``meta``); only the id of its own scope is required.

    A project policy may also name its department and cluster; otherwise the policy service looks
    them up in the catalog, because rule ownership is checked along the project's branch."""

    name: str | None = Field(default=None, description="Display name of the policy.")
    scope: PolicyScope
    clusterId: str | None = None
    departmentId: str | None = None
    projectId: str | None = None

    @model_validator(mode="after")
    def _scope_id_given(self) -> Self:
        if self.scope != "tenant" and not self.scope_id:
            raise ValueError(f"a {self.scope} policy needs {self.scope}Id")
        return self

    @property
    def scope_id(self) -> str:
        ids = {
            "tenant": "",
            "cluster": self.clusterId,
            "department": self.departmentId,
            "project": self.projectId,
        }
        return ids[self.scope] or ""

    @property
    def ref(self) -> ScopeRef:
        return ScopeRef(scope=self.scope, id=self.scope_id)


def policy_subject(policy_type: PolicyType, meta: PolicyMeta) -> str:
    """Subject id of a policy's events: one NATS token (``training-project-team-a``)."""
    return "-".join(p for p in (policy_type, meta.scope, meta.scope_id) if p)


# --- rules -------------------------------------------------------------------------------------


class Rules(BaseModel):
    """Base of rule objects: an unknown rule kind is refused by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class OptionItem(Rules):
    value: Any = Field(description="An allowed value.")
    displayed: str | None = Field(default=None, description="How a UI shows it.")


class DefaultFrom(Rules):
    field: str = Field(description="Path of the field the default is computed from.")
    factor: float = Field(default=1.0, description="Multiplier applied to that field's value.")


class FieldRule(Rules):
    """Rules of one field. Which kinds a field accepts depends on its value type:

    boolean ``required``, ``canEdit``; string ``required``, ``canEdit``, ``options``;
    integer/number ``required``, ``canEdit``, ``min``, ``max``, ``step``, ``defaultFrom``;
    quantity ``required``, ``canEdit``, ``min``, ``max``, ``defaultFrom``;
    array ``required`` (at least one item), ``canEdit`` (false by default for arrays).
    """

    required: bool | None = Field(default=None, description="The workload must end with a value.")
    canEdit: bool | None = Field(
        default=None, description="False: a submission may not change the policy default."
    )
    options: list[OptionItem] | None = Field(default=None, description="Allowed values.")
    min: Any = Field(default=None, description="Inclusive lower bound (number or quantity).")
    max: Any = Field(default=None, description="Inclusive upper bound (number or quantity).")
    step: float | None = Field(
        default=None, gt=0, description="Allowed granularity, counted from min (or 0)."
    )
    defaultFrom: DefaultFrom | None = Field(
        default=None, description="Default computed from another field times a factor."
    )
    allowOverride: bool | None = Field(
        default=None,
        description=(
            "Tenant, cluster and department rules only: let narrower scopes add their own rule "
            "on this field. The rules then combine so that the result is never looser."
        ),
    )


class InstancesRule(Rules):
    canAdd: bool | None = Field(
        default=None, description="False: a submission may add no item beyond the defaults."
    )
    locked: list[str] | None = Field(
        default=None,
        description="Keys of default items a submission may neither change nor exclude.",
    )


class ItemizedRule(Rules):
    """Rules of an itemized field (environment variables, labels, storage instances...).

    The shape an itemized field takes in ``PolicyDocument.rules``, e.g. ``environmentVariables:
    {instances: {locked: [HF_HOME]}, attributes: {value: {required: true}}}``. The policy service
    reads it path by path (``<field>.instances``, ``<field>.attributes.<name>``), so no event or
    request schema refers to this class: it names the shape for producers and documentation.
    """

    instances: InstancesRule | None = None
    attributes: dict[str, FieldRule] | None = Field(
        default=None, description="Rules for an attribute of every item, by attribute name."
    )


class ImposedAsset(BaseModel):
    """A data source added to every workload in scope."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, description="Id of the data-source asset; names the volume.")
    kind: Literal[
        "pvc", "git", "nfs", "s3", "hostPath", "configMapVolume", "secretVolume", "dataVolume"
    ] = Field(description="Which storage list of the spec it joins.")
    source: dict[str, Any] = Field(
        description="The data source as the spec writes it, e.g. {claimName: data, path: /data}."
    )


class PolicyDocument(BaseModel):
    """``defaults`` + ``rules`` + ``imposedAssets``; see the module documentation for paths."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    defaults: dict[str, Any] = Field(default_factory=dict)
    rules: dict[str, Any] = Field(default_factory=dict)
    imposedAssets: list[ImposedAsset] = Field(default_factory=list)


class StoredPolicy(Data):
    type: PolicyType
    meta: PolicyMeta
    policy: PolicyDocument
    version: int = Field(description="Increases with every change of any policy.")
    updatedBy: str | None = None
    updatedAt: AwareDatetime | None = Field(
        default=None, description="When it last changed (set on reads of the stored policy)."
    )


# --- effective policy ----------------------------------------------------------------------------


class EffectiveDefault(Data):
    field: str
    value: Any
    source: ScopeRef


class EffectiveRule(Data):
    field: str
    rule: dict[str, Any]
    source: ScopeRef = Field(description="The scope owning the rule.")
    alsoFrom: list[ScopeRef] = Field(
        default_factory=list, description="Narrower scopes tightening it (allowOverride)."
    )


class EffectiveAsset(Data):
    asset: ImposedAsset
    source: ScopeRef


class EffectivePolicy(Data):
    type: PolicyType
    branch: list[ScopeRef] = Field(description="Scopes combined, broadest first.")
    defaults: list[EffectiveDefault] = Field(default_factory=list)
    rules: list[EffectiveRule] = Field(default_factory=list)
    imposedAssets: list[EffectiveAsset] = Field(default_factory=list)
    version: int = Field(default=0, description="Highest version among the combined policies.")


# --- events --------------------------------------------------------------------------------------


class PolicyChangeRequestedData(Data):
    action: PolicyAction
    type: PolicyType
    meta: PolicyMeta
    policy: PolicyDocument | None = Field(default=None, description="For apply and patch.")
    reset: list[str] = Field(
        default_factory=list, description="Patch only: paths whose defaults and rules are cleared."
    )


class PolicyChangeRequestedV1(Event):
    """A UI asks to apply, patch or delete a policy; subject = the policy's subject id."""

    TYPE: ClassVar[str] = "berth.policy.change-requested"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (UI,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (Consumer((POLICY,), "policy-changes"),)
    data: PolicyChangeRequestedData

    @classmethod
    def refused(cls, request: Event, reason: str, *, source: str, actor: Actor) -> Event:
        return PolicyChangeRejectedV1(
            **request.refusal_envelope(source=source, actor=actor),
            data=PolicyChangeRejectedData(
                action=request.data_field("action"),
                type=request.data_field("type"),
                meta=request.data_field("meta"),
                issues=[Issue(field="authorization", details=reason)],
            ),
        )


class PolicyChangedData(Data):
    change: PolicyChange
    type: PolicyType
    meta: PolicyMeta
    version: int
    policy: PolicyDocument | None = Field(
        default=None, description="The policy as stored after the change; none once deleted."
    )


class PolicyChangedV1(Event):
    """A policy was applied, patched or deleted; later evaluations use the new policy."""

    TYPE: ClassVar[str] = "berth.policy.changed"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (POLICY,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (Consumer((UI,)),)
    data: PolicyChangedData


class PolicyChangeRejectedData(Data):
    action: PolicyAction
    type: PolicyType
    meta: PolicyMeta
    issues: list[Issue]


class PolicyChangeRejectedV1(Event):
    """A requested policy change was refused; every problem is named with its path."""

    TYPE: ClassVar[str] = "berth.policy.change-rejected"
    VERSION: ClassVar[int] = 1
    PRODUCERS: ClassVar[tuple[str, ...]] = (POLICY,)
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = (Consumer((UI,)),)
    data: PolicyChangeRejectedData


# --- queries -------------------------------------------------------------------------------------


class PolicyApplyRequest(Query):
    """Replace the policy of a type and scope (or only check it, with validateOnly)."""

    actor: Actor
    type: PolicyType
    meta: PolicyMeta
    policy: PolicyDocument
    validateOnly: bool = False


class PolicyPatchRequest(Query):
    """Merge ``policy`` into the stored one after clearing the ``reset`` paths."""

    actor: Actor
    type: PolicyType
    meta: PolicyMeta
    policy: PolicyDocument = Field(default_factory=PolicyDocument)
    reset: list[str] = Field(default_factory=list)


class PolicyDeleteRequest(Query):
    actor: Actor
    type: PolicyType
    meta: PolicyMeta


class PolicyGetRequest(Query):
    type: PolicyType
    meta: PolicyMeta


class PolicyListRequest(Query):
    """The stored policies, of one type and in one kind of scope when given; a project,
    department or cluster id keeps those of that unit and, for a department or cluster, of the
    units below it."""

    type: PolicyType | None = None
    scope: PolicyScope | None = None
    projectId: str | None = None
    departmentId: str | None = None
    clusterId: str | None = None


class PolicyListReply(Query):
    policies: list[StoredPolicy] = Field(default_factory=list)


class PolicyEffectiveRequest(Query):
    """The effective policy of a project; department and cluster come from the catalog if unset."""

    type: PolicyType
    projectId: str
    departmentId: str | None = None
    clusterId: str | None = None


class PolicyReply(Query):
    ok: bool = True
    issues: list[Issue] = Field(default_factory=list)
    policy: StoredPolicy | None = None
    effective: EffectivePolicy | None = None
