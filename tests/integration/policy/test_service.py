"""The policy service against real NATS and PostgreSQL: policies applied by events, then a
batch of submissions, each approved or rejected exactly as the effective policy says."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from berth.contracts.envelope import Actor
from berth.contracts.events import (
    PolicyApprovedV1,
    PolicyRejectedV1,
    SubmissionReceivedData,
    SubmissionReceivedV1,
    WorkloadRef,
)
from berth.contracts.policy import (
    PolicyApplyRequest,
    PolicyChangedV1,
    PolicyChangeRejectedV1,
    PolicyChangeRequestedData,
    PolicyChangeRequestedV1,
    PolicyDocument,
    PolicyEffectiveRequest,
    PolicyMeta,
    PolicyReply,
    policy_subject,
)
from berth.contracts.queries import ProjectInfo
from berth.contracts.subjects import RPC_POLICY_APPLY, RPC_POLICY_EFFECTIVE, RPC_POLICY_VALIDATE
from berth.policy.bootstrap import build
from berth.policy.config import PolicySettings
from berth.shared.service import Service
from tests.identity import ask, publish
from tests.integration.access import grant
from tests.integration.shared.helpers import eventually, stored, unique

ADMIN = Actor(email="admin@example.com")

DEPARTMENT_POLICY = {
    "defaults": {
        "backoffLimit": 3,
        "nodePools": ["a100", "default"],
        "compute": {"cpuCoreRequest": 2, "cpuMemoryRequest": "16G", "gpuDevicesRequest": 1},
        "environmentVariables": {
            "instances": [
                {"name": "HF_HOME", "value": "/data/hf-cache"},
                {"name": "WANDB_BASE_URL", "value": "https://wandb.example"},
            ]
        },
    },
    "rules": {
        "compute": {
            "gpuDevicesRequest": {"min": 0, "max": 2},
            "cpuMemoryRequest": {"min": "1G", "max": "128G"},
        },
        "environmentVariables": {"instances": {"locked": ["WANDB_BASE_URL"]}},
        "imagePullPolicy": {"canEdit": False},
    },
}
PROJECT_POLICY = {"defaults": {"nodePools": ["default"]}, "rules": {"backoffLimit": {"max": 5}}}


async def _no_catalog(project: str) -> ProjectInfo | None:
    raise AssertionError(f"the test names every scope; no lookup of {project} expected")


@pytest.fixture
async def service(nats_url: str, database_url: str) -> AsyncIterator[Service]:
    settings = PolicySettings(
        nats_url=nats_url,
        database_url=database_url,
        batch_size=50,
        fetch_timeout=0.05,
        outbox_poll_seconds=0.2,
        local_traces=False,
    )
    svc = build(settings, resolve=_no_catalog)
    await svc.app.start()
    await grant(svc)
    try:
        yield svc
    finally:
        await svc.app.stop()


def _request(meta: PolicyMeta, doc: dict[str, Any]) -> PolicyChangeRequestedV1:
    return PolicyChangeRequestedV1(
        source="/berth/tests",
        subject=policy_subject("training", meta),
        actor=ADMIN,
        data=PolicyChangeRequestedData(
            action="apply", type="training", meta=meta, policy=PolicyDocument.model_validate(doc)
        ),
    )


async def _events(service: Service, prefix: str, cls: type[Any], ids: set[str]) -> list[Any]:
    msgs = await stored(service.js, f"{prefix}.*")
    return [cls.model_validate_json(m.data) for m in msgs if m.subject.rsplit(".", 1)[1] in ids]


def _received(
    department: str, project: str, name: str, spec: dict[str, Any]
) -> SubmissionReceivedV1:
    workload_id = uuid.uuid4().hex
    return SubmissionReceivedV1(
        source="/berth/intake",
        subject=workload_id,
        actor=Actor(email="user@example.com"),
        data=SubmissionReceivedData.model_validate(
            {
                "workload": WorkloadRef(
                    workloadId=workload_id,
                    name=name,
                    kind="training",
                    project=project,
                    department=department,
                    clusterId="local",
                    namespace=f"berth-{project}",
                    queue=project,
                    createdBy="user@example.com",
                ),
                "submission": {
                    "kind": "training",
                    "name": name,
                    "projectId": project,
                    "spec": {"image": "pytorch/pytorch", **spec},
                },
            }
        ),
    )


async def test_policies_applied_by_events_govern_a_batch_of_submissions(
    service: Service,
) -> None:
    department, project, other = unique("research"), unique("team"), unique("other")
    dept_meta = PolicyMeta(scope="department", departmentId=department, clusterId="local")
    project_meta = PolicyMeta(
        scope="project", projectId=project, departmentId=department, clusterId="local"
    )
    conflicting = PolicyMeta(
        scope="project", projectId=other, departmentId=department, clusterId="local"
    )
    requests = [
        _request(dept_meta, DEPARTMENT_POLICY),
        _request(project_meta, PROJECT_POLICY),
        _request(conflicting, {"rules": {"compute": {"gpuDevicesRequest": {"max": 1}}}}),
    ]
    for change_request in requests:
        await publish(service.js, change_request)
    subjects = {e.subject for e in requests}

    changed = await eventually(
        lambda: _wait_for(service, "policy.changed.v1", PolicyChangedV1, subjects, 2)
    )
    assert sorted(e.data.meta.scope for e in changed) == ["department", "project"]
    assert all(e.data.version > 0 for e in changed)
    (refused,) = await eventually(
        lambda: _wait_for(service, "policy.change-rejected.v1", PolicyChangeRejectedV1, subjects, 1)
    )
    assert refused.data.meta.projectId == other
    assert [i.field for i in refused.data.issues] == ["compute.gpuDevicesRequest"]
    assert f'already has rules in department: "{department}"' in refused.data.issues[0].details

    # One batch: each submission's outcome is what the effective policy says.
    cases: dict[str, tuple[SubmissionReceivedV1, list[str] | None]] = {}
    scenarios: list[tuple[str, dict[str, Any], list[str] | None]] = [
        ("within", {"compute": {"gpuDevicesRequest": 2}}, None),
        ("too-many-gpus", {"compute": {"gpuDevicesRequest": 4}}, ["compute.gpuDevicesRequest"]),
        (
            "many-problems",
            {
                "compute": {"gpuDevicesRequest": 3, "cpuMemoryRequest": "200G"},
                "backoffLimit": 9,
                "imagePullPolicy": "Always",
                "environmentVariables": [{"name": "WANDB_BASE_URL", "exclude": True}],
            },
            [
                "backoffLimit",
                "compute.cpuMemoryRequest",
                "compute.gpuDevicesRequest",
                "environmentVariables[WANDB_BASE_URL]",
                "imagePullPolicy",
            ],
        ),
        ("drops-a-default", {"environmentVariables": [{"name": "HF_HOME", "exclude": True}]}, None),
    ]
    for name, spec, expected in scenarios:
        event = _received(department, project, name, spec)
        cases[event.subject] = (event, expected)
    # Another project of the department: the department's rules, not the project's.
    sibling = _received(department, unique("sibling"), "sibling", {"backoffLimit": 9})
    cases[sibling.subject] = (sibling, None)
    for event, _ in cases.values():
        await publish(service.js, event)

    ids = set(cases)

    async def outcomes() -> dict[str, Any] | None:
        approved = await _events(service, "policy.approved.v1", PolicyApprovedV1, ids)
        rejected = await _events(service, "policy.rejected.v1", PolicyRejectedV1, ids)
        found = {e.subject: e for e in [*approved, *rejected]}
        return found if len(found) == len(ids) else None

    found = await eventually(outcomes, timeout=20)
    for subject, (event, expected) in cases.items():
        outcome = found[subject]
        name = event.data.workload.name
        if expected is None:
            assert isinstance(outcome, PolicyApprovedV1), (name, outcome.data)
        else:
            assert isinstance(outcome, PolicyRejectedV1), name
            assert sorted(i.field for i in outcome.data.complianceIssues) == expected, name
            assert all("rule from" in i.details for i in outcome.data.complianceIssues)

    within = found[next(s for s, (e, _) in cases.items() if e.data.workload.name == "within")]
    spec = within.data.effectiveSpec.spec
    assert spec.compute.gpuDevicesRequest == 2
    assert spec.compute.cpuMemoryRequest == "16G"  # the department's default
    assert spec.nodePools == ["default"]  # the project's default wins
    assert spec.backoffLimit == 3
    assert [e.name for e in spec.environmentVariables] == ["HF_HOME", "WANDB_BASE_URL"]
    dropped = found[
        next(s for s, (e, _) in cases.items() if e.data.workload.name == "drops-a-default")
    ]
    assert [e.name for e in dropped.data.effectiveSpec.spec.environmentVariables] == [
        "WANDB_BASE_URL"
    ]
    too_many = found[
        next(s for s, (e, _) in cases.items() if e.data.workload.name == "too-many-gpus")
    ]
    assert [i.details for i in too_many.data.complianceIssues] == [
        f"value must be no greater than 2 (rule from department {department})"
    ]


async def test_queries_apply_validate_and_read_the_effective_policy(service: Service) -> None:
    department, project = unique("dept"), unique("proj")
    nc = service.broker.connection
    meta = PolicyMeta(scope="department", departmentId=department)
    bad = PolicyApplyRequest(
        actor=ADMIN,
        type="training",
        meta=meta,
        policy=PolicyDocument.model_validate(
            {"rules": {"compute": {"gpuDevicesRequest": {"min": 3, "max": 1}, "nope": {}}}}
        ),
    )
    reply = await ask(nc, RPC_POLICY_APPLY, bad, PolicyReply, timeout=5)
    assert not reply.ok
    assert sorted(i.field for i in reply.issues) == [
        "rules.compute.gpuDevicesRequest",
        "rules.compute.nope",
    ]

    good = bad.model_copy(update={"policy": PolicyDocument.model_validate(DEPARTMENT_POLICY)})
    reply = await ask(nc, RPC_POLICY_VALIDATE, good, PolicyReply, timeout=5)
    assert reply.ok and reply.policy is not None and reply.policy.version == 0
    effective_request = PolicyEffectiveRequest(
        type="training", projectId=project, departmentId=department, clusterId="local"
    )
    reply = await ask(nc, RPC_POLICY_EFFECTIVE, effective_request, PolicyReply, timeout=5)
    assert reply.effective is not None and reply.effective.rules == []  # nothing was saved

    reply = await ask(nc, RPC_POLICY_APPLY, good, PolicyReply, timeout=5)
    assert reply.ok and reply.policy is not None and reply.policy.version > 0
    subject = policy_subject("training", meta)
    changed = await eventually(
        lambda: _wait_for(service, "policy.changed.v1", PolicyChangedV1, {subject}, 1)
    )
    assert changed[0].data.change == "applied"

    reply = await ask(nc, RPC_POLICY_EFFECTIVE, effective_request, PolicyReply, timeout=5)
    assert reply.effective is not None
    rules = {r.field: str(r.source) for r in reply.effective.rules}
    assert rules["compute.gpuDevicesRequest"] == f"department {department}"
    defaults = {d.field: str(d.source) for d in reply.effective.defaults}
    assert defaults["backoffLimit"] == f"department {department}"


async def _wait_for(
    service: Service, prefix: str, cls: type[Any], subjects: set[str], count: int
) -> list[Any] | None:
    found = await _events(service, prefix, cls, subjects)
    return found if len(found) >= count else None
