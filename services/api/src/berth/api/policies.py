"""``/api/v2/policy[/<type>]``: Run:ai's workload policies, as the policy service's queries
(the same as ``berth policy get|apply|patch|delete|effective``, and its list)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from berth.api.auth import Caller, CallerDep
from berth.api.bus import Bus
from berth.api.errors import BAD_REQUEST, NOT_FOUND, RESPONSES, ApiError, rejected
from berth.api.views import COLLECTIONS
from berth.contracts.policy import (
    EffectivePolicy,
    EffectiveRule,
    PolicyApplyRequest,
    PolicyDeleteRequest,
    PolicyDocument,
    PolicyEffectiveRequest,
    PolicyGetRequest,
    PolicyListReply,
    PolicyListRequest,
    PolicyMeta,
    PolicyPatchRequest,
    PolicyReply,
    PolicyScope,
    PolicyType,
    StoredPolicy,
    policy_subject,
)
from berth.contracts.subjects import (
    RPC_POLICY_APPLY,
    RPC_POLICY_DELETE,
    RPC_POLICY_EFFECTIVE,
    RPC_POLICY_GET,
    RPC_POLICY_LIST,
    RPC_POLICY_PATCH,
    RPC_POLICY_VALIDATE,
)


class PolicyChange(BaseModel):
    """Run:ai's ``<Type>PolicyOverwriteRequestV2`` / ``ChangeRequest``: where, and what."""

    meta: PolicyMeta
    policy: PolicyDocument = Field(default_factory=PolicyDocument)


class PolicyView(BaseModel):
    """Run:ai's ``<Type>PolicyV2``: this scope's own policy and, for a project, the effective
    one; ``effectiveRules`` (berth) names the scope each rule and default comes from."""

    meta: PolicyMeta
    policy: PolicyDocument | None = None
    effective: PolicyDocument | None = None
    effectiveRules: EffectivePolicy | None = None
    version: int | None = None


def nested(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """``[("compute.gpuDevicesRequest", {"max": 2})]`` -> ``{"compute": {"gpuDevicesRequest":
    {"max": 2}}}``: the effective policy's field paths as a policy document's tree."""
    tree: dict[str, Any] = {}
    for path, value in items:
        node = tree
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


def as_document(effective: EffectivePolicy) -> PolicyDocument:
    return PolicyDocument(
        defaults=nested([(d.field, d.value) for d in effective.defaults]),
        rules=nested([(r.field, r.rule) for r in effective.rules]),
        imposedAssets=[a.asset for a in effective.imposedAssets],
    )


class ListedMeta(BaseModel):
    """Run:ai's ``PolicyMeta`` of a listed policy. berth keeps when a policy last changed, not
    when it was created: ``createdAt`` and ``createdBy`` are those of its last change."""

    id: str
    name: str
    scope: PolicyScope
    projectId: str | None = None
    departmentId: str | None = None
    clusterId: str | None = None
    tenantId: int = 1
    createdBy: str
    createdAt: datetime | None
    updatedBy: str
    updatedAt: datetime | None


class PolicyListEntry(BaseModel):
    type: PolicyType
    meta: ListedMeta
    policy: PolicyDocument = Field(description="berth: the policy itself.")
    version: int


class PolicyList(BaseModel):
    policies: list[PolicyListEntry]


def entry(stored: StoredPolicy) -> PolicyListEntry:
    meta = stored.meta
    who = stored.updatedBy or ""
    return PolicyListEntry(
        type=stored.type,
        meta=ListedMeta(
            id=policy_subject(stored.type, meta),
            name=meta.name or f"{stored.type} policy of {meta.ref}",
            scope=meta.scope,
            projectId=meta.projectId,
            departmentId=meta.departmentId,
            clusterId=meta.clusterId,
            createdBy=who,
            createdAt=stored.updatedAt,
            updatedBy=who,
            updatedAt=stored.updatedAt,
        ),
        policy=stored.policy,
        version=stored.version,
    )


def router(bus: Bus) -> APIRouter:
    api = APIRouter(prefix="/api/v2/policy", tags=["policies"], responses=RESPONSES)

    async def ask(caller: Caller, subject: str, request: BaseModel) -> PolicyReply:
        reply = await bus.ask(subject, request, PolicyReply, caller.authorization)
        if not reply.ok:
            raise rejected("Bad request", list(reply.issues))
        return reply

    def meta_of(
        scope: PolicyScope, projectId: str | None, departmentId: str | None, clusterId: str | None
    ) -> PolicyMeta:
        try:
            return PolicyMeta(
                scope=scope, projectId=projectId, departmentId=departmentId, clusterId=clusterId
            )
        except ValueError as exc:
            raise ApiError(400, "Required parameter is missing", str(exc)) from None

    @api.get("", summary="List policies.", responses=BAD_REQUEST)
    async def list_policies(
        caller: CallerDep,
        workloadType: Annotated[
            str | None, Query(description="Workspace, Training, Distributed or Inference.")
        ] = None,
        scope: Annotated[PolicyScope | None, Query(description="Only this kind of scope.")] = None,
        departmentId: str | None = None,
        projectId: str | None = None,
        clusterId: str | None = None,
    ) -> PolicyList:
        kind = workloadType.lower() if workloadType else None
        if kind is not None and kind not in COLLECTIONS:
            kinds = ", ".join(k.capitalize() for k in COLLECTIONS)
            raise ApiError(400, "Bad request", f"workloadType: one of {kinds}")
        request = PolicyListRequest(
            type=kind,  # type: ignore[arg-type]
            scope=scope,
            projectId=projectId,
            departmentId=departmentId,
            clusterId=clusterId,
        )
        reply = await bus.ask(RPC_POLICY_LIST, request, PolicyListReply, caller.authorization)
        return PolicyList(policies=[entry(p) for p in reply.policies])

    for kind, collection in COLLECTIONS.items():
        _routes(api, ask, meta_of, kind, collection)  # type: ignore[arg-type]
    return api


def _routes(api: APIRouter, ask: Any, meta_of: Any, kind: PolicyType, collection: str) -> None:
    async def get(
        caller: CallerDep,
        scope: Annotated[PolicyScope, Query(description="The scope the policy relates to.")],
        projectId: str | None = None,
        departmentId: str | None = None,
        clusterId: str | None = None,
    ) -> PolicyView:
        meta = meta_of(scope, projectId, departmentId, clusterId)
        own = await caller_reply(caller, meta)
        view = PolicyView(
            meta=meta,
            policy=own.policy.policy if own.policy else None,
            version=own.policy.version if own.policy else None,
        )
        if scope == "project" and projectId:
            effective = await ask(
                caller,
                RPC_POLICY_EFFECTIVE,
                PolicyEffectiveRequest(
                    type=kind, projectId=projectId, departmentId=departmentId, clusterId=clusterId
                ),
            )
            if effective.effective is not None:
                view.effective = as_document(effective.effective)
                view.effectiveRules = effective.effective
        if view.policy is None and view.effective is None:
            raise ApiError(404, "Resource id not found.", f"no {kind} policy for {meta.ref}")
        return view

    async def caller_reply(caller: Caller, meta: PolicyMeta) -> PolicyReply:
        try:
            return await ask(caller, RPC_POLICY_GET, PolicyGetRequest(type=kind, meta=meta))  # type: ignore[no-any-return]
        except ApiError as exc:
            if exc.code == 403:
                raise
            return PolicyReply(ok=False)

    async def put(
        body: PolicyChange,
        caller: CallerDep,
        validateOnly: Annotated[bool, Query(description="Check only; save nothing.")] = False,
    ) -> PolicyView:
        request = PolicyApplyRequest(
            actor=caller.actor, type=kind, meta=body.meta, policy=body.policy
        )
        reply = await ask(
            caller, RPC_POLICY_VALIDATE if validateOnly else RPC_POLICY_APPLY, request
        )
        return saved(body, reply)

    async def patch(body: PolicyChange, caller: CallerDep) -> PolicyView:
        request = PolicyPatchRequest(
            actor=caller.actor, type=kind, meta=body.meta, policy=body.policy
        )
        return saved(body, await ask(caller, RPC_POLICY_PATCH, request))

    def saved(body: PolicyChange, reply: PolicyReply) -> PolicyView:
        stored = reply.policy
        return PolicyView(
            meta=body.meta,
            policy=stored.policy if stored else body.policy,
            version=stored.version if stored else None,
        )

    async def delete(
        caller: CallerDep,
        scope: Annotated[PolicyScope, Query(description="The scope the policy relates to.")],
        projectId: str | None = None,
        departmentId: str | None = None,
        clusterId: str | None = None,
    ) -> Response:
        meta = meta_of(scope, projectId, departmentId, clusterId)
        await ask(
            caller, RPC_POLICY_DELETE, PolicyDeleteRequest(actor=caller.actor, type=kind, meta=meta)
        )
        return Response(status_code=204)

    what = f"{kind} policy"
    path = f"/{collection}"
    api.add_api_route(
        path,
        get,
        methods=["GET"],
        summary=f"Get a {what}.",
        responses={**NOT_FOUND, **BAD_REQUEST},
        name=f"get_{kind}_policy",
    )
    api.add_api_route(
        path,
        put,
        methods=["PUT"],
        summary=f"Overwrite a {what}.",
        responses=BAD_REQUEST,
        name=f"put_{kind}_policy",
    )
    api.add_api_route(
        path,
        patch,
        methods=["PATCH"],
        summary=f"Update a {what}.",
        responses=BAD_REQUEST,
        name=f"patch_{kind}_policy",
    )
    api.add_api_route(
        path,
        delete,
        methods=["DELETE"],
        status_code=204,
        response_class=Response,
        summary=f"Delete a {what}.",
        responses={**NOT_FOUND, **BAD_REQUEST},
        name=f"delete_{kind}_policy",
    )


__all__ = ["EffectiveRule", "router"]
