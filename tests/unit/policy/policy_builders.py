"""Small builders for policy engine tests."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from berth.contracts.events import Issue
from berth.contracts.policy import PolicyDocument, PolicyScope, PolicyType, ScopeRef
from berth.contracts.workload import WorkloadSubmission
from berth.policy import engine

SUBMISSION: TypeAdapter[WorkloadSubmission] = TypeAdapter(WorkloadSubmission)


def ref(scope: PolicyScope, scope_id: str = "") -> ScopeRef:
    return ScopeRef(scope=scope, id=scope_id)


DEPT = ref("department", "research")
PROJECT = ref("project", "team-a")
CLUSTER = ref("cluster", "local")
TENANT = ref("tenant")


def compiled(
    doc: dict[str, Any], policy_type: PolicyType = "training", scope: ScopeRef | None = None
) -> engine.Compiled:
    result, issues = engine.compile_policy(policy_type, PolicyDocument.model_validate(doc), scope)
    assert issues == [], issues
    return result


def problems(doc: dict[str, Any], policy_type: PolicyType = "training") -> list[Issue]:
    return engine.compile_policy(policy_type, PolicyDocument.model_validate(doc))[1]


def scoped(
    scope: ScopeRef, doc: dict[str, Any], policy_type: PolicyType = "training", version: int = 1
) -> engine.ScopedPolicy:
    return engine.ScopedPolicy(scope, compiled(doc, policy_type, scope), version)


def effective(
    *policies: tuple[ScopeRef, dict[str, Any]], policy_type: PolicyType = "training"
) -> engine.Effective:
    return engine.merge(
        policy_type,
        [scoped(s, d, policy_type, i + 1) for i, (s, d) in enumerate(policies)],
    )


def submission(spec: dict[str, Any], kind: str = "training", **extra: Any) -> WorkloadSubmission:
    body = {"kind": kind, "name": "w", "projectId": "team-a", "spec": spec, **extra}
    return SUBMISSION.validate_python(body)


def run(
    spec: dict[str, Any],
    *policies: tuple[ScopeRef, dict[str, Any]],
    kind: str = "training",
    **extra: Any,
) -> tuple[dict[str, Any], list[Issue]]:
    policy_type: PolicyType = kind  # type: ignore[assignment]
    eff = effective(*policies, policy_type=policy_type)
    result, issues = engine.evaluate(submission(spec, kind, **extra), eff)
    return result.model_dump(mode="json", exclude_none=True), issues


def fields(issues: list[Issue]) -> list[str]:
    return [i.field for i in issues]
