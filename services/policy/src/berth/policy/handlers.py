"""Policy handlers: evaluate submissions against the effective policy of their branch, and
apply, patch and delete policies (from events and from request-reply queries).

Handlers reach storage only through the store port (``store.PolicyStore``) and emit only through
their unit of work, so the same code runs on PostgreSQL in the service and on in-memory fakes in
unit tests."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from berth.contracts.access import TENANT, AccessRule, Scope, project_path, refusal
from berth.contracts.envelope import Actor
from berth.contracts.events import (
    Issue,
    PolicyApprovedData,
    PolicyApprovedV1,
    PolicyRejectedData,
    PolicyRejectedV1,
    SubmissionReceivedV1,
    WorkloadRef,
)
from berth.contracts.policy import (
    PolicyAction,
    PolicyApplyRequest,
    PolicyChange,
    PolicyChangedData,
    PolicyChangedV1,
    PolicyChangeRejectedData,
    PolicyChangeRejectedV1,
    PolicyChangeRequestedV1,
    PolicyDeleteRequest,
    PolicyDocument,
    PolicyEffectiveRequest,
    PolicyGetRequest,
    PolicyListReply,
    PolicyListRequest,
    PolicyMeta,
    PolicyPatchRequest,
    PolicyReply,
    PolicyType,
    StoredPolicy,
    policy_subject,
)
from berth.contracts.queries import EvaluateReply, EvaluateRequest
from berth.policy import engine, store
from berth.policy.catalog_client import ProjectResolver
from berth.policy.store import CompiledCache, Evaluation, PolicyStore, Reader, SqlPolicyStore
from berth.policy.tables import access_rules
from berth.shared.access import RulesOf, sql_rules
from berth.shared.consumer import Emitter, Incoming
from berth.shared.errors import TransientError

SOURCE = "/berth/policy"

_CHANGES: dict[PolicyAction, PolicyChange] = {
    "apply": "applied",
    "patch": "patched",
    "delete": "deleted",
}


StoreOf = Callable[[Emitter], PolicyStore]

SQL_RULES: RulesOf = sql_rules(access_rules)
"""Policy's copy of the access rules, in a unit of work."""
"""The policy store inside a unit of work's transaction."""

Begin = Callable[[], AbstractAsyncContextManager[Emitter]]
"""Opens a unit of work (a transaction whose events commit with it)."""


# --- evaluation ------------------------------------------------------------------------------


def _branch_keys(workload: WorkloadRef) -> list[store.Key]:
    refs = engine.branch_of(
        cluster=workload.clusterId, department=workload.department, project=workload.project
    )
    return [(workload.kind, ref.scope, ref.id) for ref in refs]


async def _effective_for(
    policies: PolicyStore, workloads: list[WorkloadRef], cache: CompiledCache
) -> list[engine.Effective]:
    # One read of every branch of the batch, inside its transaction: a policy is either wholly
    # in this batch's view or not at all.
    keys = [_branch_keys(w) for w in workloads]
    rows = await policies.rows_for(k for ks in keys for k in ks)
    by_key = {r.key: r for r in rows}
    return [
        cache.effective(w.kind, [by_key[k] for k in ks if k in by_key])
        for w, ks in zip(workloads, keys, strict=True)
    ]


async def evaluate_submissions(
    items: list[Incoming[SubmissionReceivedV1]],
    unit: Emitter,
    *,
    cache: CompiledCache,
    policies: StoreOf = SqlPolicyStore.of,
) -> None:
    """Each received workload approved (with its effective spec) or rejected (every issue)."""
    db = policies(unit)
    workloads = [item.event.data.workload for item in items]
    effective = await _effective_for(db, workloads, cache)
    outcomes: list[Evaluation] = []
    for item, eff in zip(items, effective, strict=True):
        workload = item.event.data.workload
        spec, issues = engine.evaluate(item.event.data.submission, eff)
        item.span.set_attribute("berth.outcome", "rejected" if issues else "approved")
        item.span.set_attribute("berth.policy.version", eff.version)
        outcomes.append(
            Evaluation(
                workload_id=workload.workloadId,
                outcome="rejected" if issues else "approved",
                effective_spec=spec.model_dump(mode="json", exclude_none=True),
                issues=[i.model_dump() for i in issues],
            )
        )
        event: PolicyApprovedV1 | PolicyRejectedV1
        if issues:
            event = PolicyRejectedV1(
                source=SOURCE,
                **item.event.chain(),
                data=PolicyRejectedData(workload=workload, complianceIssues=issues),
            )
        else:
            event = PolicyApprovedV1(
                source=SOURCE,
                **item.event.chain(),
                data=PolicyApprovedData(workload=workload, effectiveSpec=spec),
            )
        unit.emit(event, cause=item)
    await db.record(outcomes)


async def evaluate_query(
    request: EvaluateRequest, *, read: Reader, cache: CompiledCache
) -> EvaluateReply:
    """The same evaluation, for a dry run: nothing is recorded."""
    async with read() as db:
        (eff,) = await _effective_for(db, [request.workload], cache)
    spec, issues = engine.evaluate(request.submission, eff)
    return EvaluateReply(effectiveSpec=spec, complianceIssues=issues)


# --- changes ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a requested change came to: the stored policy (or its preview) or every problem."""

    meta: PolicyMeta
    issues: list[Issue] = field(default_factory=list)
    stored: StoredPolicy | None = None
    version: int | None = None


def _unreachable(exc: Exception) -> Issue:
    return Issue(field="meta.projectId", details=f"cannot look the project up: {exc}")


async def _complete_meta(
    meta: PolicyMeta, resolve: ProjectResolver
) -> tuple[PolicyMeta, Issue | None]:
    """A project policy's department and cluster, looked up when its meta omits them: rule
    ownership is checked along the project's branch."""
    if meta.scope != "project" or (meta.departmentId and meta.clusterId):
        return meta, None
    # A TransientError (catalog unreachable) propagates: a batch is retried, a query answers it.
    info = await resolve(meta.scope_id)
    if info is None:
        return meta, Issue(field="meta.projectId", details=f'unknown project "{meta.scope_id}"')
    return (
        meta.model_copy(
            update={
                "departmentId": meta.departmentId or info.department,
                "clusterId": meta.clusterId or info.clusterId,
            }
        ),
        None,
    )


def scope_path(meta: PolicyMeta) -> tuple[Scope, ...]:
    """Where a policy lives in the organisation tree: the scope a rule must cover to change it."""
    if meta.scope == "project":
        return project_path(meta.scope_id, meta.departmentId, meta.clusterId)
    if meta.scope == "department":
        cluster: tuple[Scope, ...] = (("cluster", meta.clusterId),) if meta.clusterId else ()
        return (TENANT, *cluster, ("department", meta.scope_id))
    if meta.scope == "cluster":
        return (TENANT, ("cluster", meta.scope_id))
    return (TENANT,)


def access_issue(
    actor: Actor, action: PolicyAction, meta: PolicyMeta, rules: list[AccessRule], *, only: bool
) -> Issue | None:
    """Changing a policy needs ``policies.update`` (deleting ``policies.delete``) at its scope;
    validating one changes nothing and needs ``policies.read``."""
    verb, needed = ("validate", "read") if only else (action, action)
    problem = refusal(
        actor,
        verb,
        "policies",
        "update" if needed in ("apply", "patch") else needed,  # type: ignore[arg-type]
        scope_path(meta),
        rules,
    )
    return Issue(field="actor", details=problem) if problem else None


async def change(
    policies: PolicyStore,
    *,
    action: PolicyAction,
    policy_type: PolicyType,
    meta: PolicyMeta,
    document: PolicyDocument | None,
    reset: list[str],
    actor: Actor,
    rules: list[AccessRule],
    resolve: ProjectResolver,
    validate_only: bool = False,
) -> Outcome:
    """Check (the caller's access rules first) and, unless ``validate_only``, store one change,
    in the caller's transaction."""
    meta, problem = await _complete_meta(meta, resolve)
    if problem is not None:
        return Outcome(meta, [problem])
    # A project's department and cluster as the request names them are not trusted: decide on
    # the tenant and the project alone, and only when that is not enough, on where the catalog
    # says the project is.
    named = meta.scope == "project" and bool(meta.departmentId or meta.clusterId)
    bare = PolicyMeta(scope="project", projectId=meta.scope_id) if named else meta
    denied = access_issue(actor, action, bare, rules, only=validate_only)
    if denied and named:
        real, problem = await _complete_meta(bare, resolve)
        if problem is not None:
            return Outcome(meta, [problem])
        denied = access_issue(actor, action, real, rules, only=validate_only)
    if denied:
        return Outcome(meta, [denied])
    await policies.lock(policy_type)
    ref = meta.ref
    if action == "delete":
        version = None if validate_only else await policies.remove(policy_type, ref)
        if version is None and not validate_only:
            return Outcome(meta, [Issue(field="meta", details=f"no {policy_type} policy in {ref}")])
        return Outcome(meta, version=version)

    compiled, issues = engine.compile_policy(policy_type, document or PolicyDocument(), ref)
    if action == "patch":
        known = engine.catalog(policy_type)
        issues.extend(
            Issue(field=f"reset.{path}", details="unknown field path")
            for path in reset
            if path not in known and not path.startswith("imposedAssets.")
        )
        current = await policies.load(policy_type, ref)
        if current is not None:
            before, _ = engine.compile_policy(
                policy_type, PolicyDocument.model_validate(current.document), ref
            )
            compiled = engine.patched(before, compiled, reset)
    others = [
        engine.ScopedPolicy(
            engine_ref,
            engine.compile_policy(policy_type, PolicyDocument.model_validate(row.document))[0],
            row.version,
        )
        for row in await policies.related(policy_type, meta)
        if (engine_ref := store.meta_of(row).ref) != ref
    ]
    issues.extend(engine.ownership_conflicts(engine.ScopedPolicy(ref, compiled), others))
    if issues:
        return Outcome(meta, issues)
    document = engine.canonical(compiled)
    if validate_only:
        return Outcome(
            meta, stored=StoredPolicy(type=policy_type, meta=meta, policy=document, version=0)
        )
    version = await policies.save(policy_type, meta, document, actor.email)
    return Outcome(
        meta,
        stored=StoredPolicy(
            type=policy_type, meta=meta, policy=document, version=version, updatedBy=actor.email
        ),
        version=version,
    )


def _changed_data(
    action: PolicyAction, policy_type: PolicyType, outcome: Outcome
) -> PolicyChangedData:
    assert outcome.version is not None
    return PolicyChangedData(
        change=_CHANGES[action],
        type=policy_type,
        meta=outcome.meta,
        version=outcome.version,
        policy=outcome.stored.policy if outcome.stored else None,
    )


async def change_policies(
    items: list[Incoming[PolicyChangeRequestedV1]],
    unit: Emitter,
    *,
    resolve: ProjectResolver,
    policies: StoreOf = SqlPolicyStore.of,
    rules: RulesOf = SQL_RULES,
) -> None:
    """Changes requested by events (UIs), in order; each becomes changed or change-rejected."""
    db = policies(unit)
    in_force = await rules(unit).access_rules()
    for item in items:
        data = item.event.data
        outcome = await change(
            db,
            action=data.action,
            policy_type=data.type,
            meta=data.meta,
            document=data.policy,
            reset=data.reset,
            actor=item.event.actor,
            rules=in_force,
            resolve=resolve,
        )
        item.span.set_attribute("berth.outcome", "rejected" if outcome.issues else "changed")
        if outcome.issues:
            unit.emit(
                PolicyChangeRejectedV1(
                    source=SOURCE,
                    **item.event.chain(),
                    data=PolicyChangeRejectedData(
                        action=data.action, type=data.type, meta=data.meta, issues=outcome.issues
                    ),
                ),
                cause=item,
            )
        else:
            unit.emit(
                PolicyChangedV1(
                    source=SOURCE,
                    **item.event.chain(),
                    data=_changed_data(data.action, data.type, outcome),
                ),
                cause=item,
            )


@dataclass(frozen=True)
class Writer:
    """What a query handler needs to change policies: units of work, and the store in each."""

    begin: Begin
    resolve: ProjectResolver
    policies: StoreOf = SqlPolicyStore.of
    rules: RulesOf = SQL_RULES


async def _change_query(
    writer: Writer,
    *,
    action: PolicyAction,
    policy_type: PolicyType,
    meta: PolicyMeta,
    actor: Actor | None,
    document: PolicyDocument | None = None,
    reset: list[str] | None = None,
    validate_only: bool = False,
) -> PolicyReply:
    if actor is None:
        denied = f"forbidden: an anonymous caller may not {action} policies (no identity)"
        return PolicyReply(ok=False, issues=[Issue(field="actor", details=denied)])
    async with writer.begin() as unit:
        try:
            outcome = await change(
                writer.policies(unit),
                action=action,
                policy_type=policy_type,
                meta=meta,
                document=document,
                reset=reset or [],
                actor=actor,
                rules=await writer.rules(unit).access_rules(),
                resolve=writer.resolve,
                validate_only=validate_only,
            )
        except TransientError as exc:
            return PolicyReply(ok=False, issues=[_unreachable(exc)])
        if not outcome.issues and not validate_only:
            # Same transaction as the change: the change is stored if and only if it is announced.
            unit.emit(
                PolicyChangedV1(
                    source=SOURCE,
                    subject=policy_subject(policy_type, outcome.meta),
                    actor=actor,
                    data=_changed_data(action, policy_type, outcome),
                )
            )
    return PolicyReply(ok=not outcome.issues, issues=outcome.issues, policy=outcome.stored)


async def apply_query(request: PolicyApplyRequest, *, writer: Writer) -> PolicyReply:
    return await _change_query(
        writer,
        action="apply",
        policy_type=request.type,
        meta=request.meta,
        actor=request.actor,
        document=request.policy,
        validate_only=request.validateOnly,
    )


async def validate_query(request: PolicyApplyRequest, *, writer: Writer) -> PolicyReply:
    """``validateOnly``: every check of an apply, nothing stored, no event."""
    return await apply_query(request.model_copy(update={"validateOnly": True}), writer=writer)


async def patch_query(request: PolicyPatchRequest, *, writer: Writer) -> PolicyReply:
    return await _change_query(
        writer,
        action="patch",
        policy_type=request.type,
        meta=request.meta,
        actor=request.actor,
        document=request.policy,
        reset=request.reset,
    )


async def delete_query(request: PolicyDeleteRequest, *, writer: Writer) -> PolicyReply:
    return await _change_query(
        writer, action="delete", policy_type=request.type, meta=request.meta, actor=request.actor
    )


async def get_query(request: PolicyGetRequest, *, read: Reader) -> PolicyReply:
    async with read() as db:
        row = await db.load(request.type, request.meta.ref)
    if row is None:
        issue = Issue(field="meta", details=f"no {request.type} policy in {request.meta.ref}")
        return PolicyReply(ok=False, issues=[issue])
    return PolicyReply(policy=store.stored(row))


async def list_query(request: PolicyListRequest, *, read: Reader) -> PolicyListReply:
    async with read() as db:
        rows = await db.listed(request.type, request.scope)

    def wanted(row: store.PolicyRow) -> bool:
        own: dict[str, str | None] = {
            "cluster": row.cluster_id,
            "department": row.department_id,
            row.scope: row.scope_id,
        }
        return all(
            given is None or own.get(scope) == given
            for scope, given in (
                ("project", request.projectId),
                ("department", request.departmentId),
                ("cluster", request.clusterId),
            )
        )

    return PolicyListReply(policies=[store.stored(row) for row in rows if wanted(row)])


async def effective_query(
    request: PolicyEffectiveRequest,
    *,
    read: Reader,
    cache: CompiledCache,
    resolve: ProjectResolver,
) -> PolicyReply:
    """A project's effective policy, each default and rule with the scope it comes from."""
    department, cluster = request.departmentId, request.clusterId
    if department is None or cluster is None:
        try:
            meta, problem = await _complete_meta(
                PolicyMeta(scope="project", projectId=request.projectId), resolve
            )
        except TransientError as exc:
            return PolicyReply(ok=False, issues=[_unreachable(exc)])
        if problem is not None:
            return PolicyReply(ok=False, issues=[problem])
        department, cluster = department or meta.departmentId, cluster or meta.clusterId
    refs = engine.branch_of(cluster=cluster, department=department, project=request.projectId)
    async with read() as db:
        rows = await db.rows_for([(request.type, r.scope, r.id) for r in refs])
    described = engine.describe(cache.effective(request.type, rows))
    return PolicyReply(effective=described.model_copy(update={"branch": refs}))
