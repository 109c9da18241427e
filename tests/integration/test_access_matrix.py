"""The permission matrix against the running services: for every built-in role granted at each
scope around project team-a (the project, its department, its cluster, the tenant, and the
sibling project team-b), one user acts through every enforcing service: submits a training
(intake), lists workloads (intake's read model), suspends and deletes the administrator's
training (ownership), applies a policy (policy), creates an environment (catalog) and asks
for a cluster setting (cluster-sync). What each outcome must be is read from ``MATRIX`` and
the scope tree alone, not from the evaluator the services use."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.msg import Msg
from sqlalchemy import text

from berth.catalog.bootstrap import build as build_catalog
from berth.catalog.config import CatalogSettings
from berth.cluster_sync.bootstrap import build as build_cluster_sync
from berth.cluster_sync.config import ClusterSyncSettings
from berth.contracts.access import (
    MATRIX,
    ROLES,
    AccessRuleCreateRequest,
    AccessRuleReply,
    Role,
)
from berth.contracts.catalog import AssetPutRequest, AssetReply
from berth.contracts.envelope import Actor
from berth.contracts.events import (
    ClusterConfigRequestedData,
    ClusterConfigRequestedV1,
    ClusterSettings,
    SubmissionRequestedData,
    SubmissionRequestedV1,
    WorkloadActionData,
    WorkloadActionRequestedV1,
)
from berth.contracts.policy import PolicyApplyRequest, PolicyDocument, PolicyMeta, PolicyReply
from berth.contracts.queries import WorkloadListReply, WorkloadQuery
from berth.contracts.subjects import (
    RPC_ACCESS_RULES_CREATE,
    RPC_CATALOG_ASSETS_PUT,
    RPC_POLICY_APPLY,
    RPC_WORKLOADS_LIST,
)
from berth.contracts.workload import WorkloadSubmission
from berth.intake.bootstrap import build as build_intake
from berth.intake.config import IntakeSettings
from berth.ownership.bootstrap import build as build_ownership
from berth.ownership.config import OwnershipSettings
from berth.policy.bootstrap import build as build_policy
from berth.policy.config import PolicySettings
from berth.shared.service import Service
from tests.identity import ask, publish
from tests.integration.catalog.test_intake_projection import _pull_requests_expired
from tests.integration.cluster_registry import register
from tests.integration.conftest import ADMIN_EMAIL
from tests.integration.shared.helpers import eventually

ADMIN = Actor(email=ADMIN_EMAIL)
FAST: dict[str, Any] = {"batch_size": 100, "fetch_timeout": 0.05, "outbox_poll_seconds": 0.1}
TEAM_A = (("tenant", ""), ("cluster", "local"), ("department", "research"), ("project", "team-a"))
SCOPES: tuple[tuple[str, str], ...] = (*TEAM_A, ("project", "team-b"))
CLUSTER = (("tenant", ""), ("cluster", "local"))
ENFORCERS = ("intake", "policy", "ownership", "cluster_sync")


def may(role: Role, permission: str, scope: tuple[str, str], where: tuple[Any, ...]) -> bool:
    """From the matrix: the role holds the permission and the rule's scope covers the object."""
    resource, action = permission.rsplit(".", 1)
    return action in MATRIX[resource][role.name] and scope in where


@contextlib.asynccontextmanager
async def running(*services: Service) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for service in services:
            await service.app.start()
            stack.push_async_callback(service.app.stop)
        yield


class Answers:
    """Every event answering a request, by the id of the request that caused it."""

    def __init__(self) -> None:
        self.by_cause: dict[str, str] = {}

    async def on_msg(self, msg: Msg) -> None:
        raw = json.loads(msg.data)
        if raw.get("causationid"):
            # "submission.received.v1.<id>" -> "submission.received"
            self.by_cause[raw["causationid"]] = msg.subject.rsplit(".", 2)[0]


def submission(name: str) -> WorkloadSubmission:
    from pydantic import TypeAdapter

    return TypeAdapter(WorkloadSubmission).validate_python(
        {
            "kind": "training",
            "name": name,
            "projectId": "team-a",
            "spec": {"image": "pytorch/pytorch", "compute": {"gpuDevicesRequest": 0}},
        }
    )


@pytest.mark.timeout(600)
async def test_every_role_at_every_scope_gets_what_the_matrix_says(
    nats_url: str, database_url: str, nc: Any, tmp_path: Path
) -> None:
    answers = Answers()
    for subject in (
        "submission.received.v1.*",
        "submission.rejected.v1.*",
        "workload.action-authorized.v1.*",
        "workload.action-denied.v1.*",
        "cluster.config-desired.v1.*",
        "cluster.config-rejected.v1.*",
    ):
        await nc.subscribe(subject, cb=answers.on_msg)
    common = {"nats_url": nats_url, "database_url": database_url, "local_traces": False, **FAST}
    services = (
        build_catalog(CatalogSettings(**common, keys_dir=tmp_path)),
        build_intake(IntakeSettings(**common, catalog_timeout_seconds=5)),
        build_ownership(OwnershipSettings(**common)),
        build_policy(PolicySettings(**common)),
        build_cluster_sync(ClusterSyncSettings(**common)),
    )
    async with running(*services):
        await register(nc, "local")
        js = nc.jetstream()

        # One user per role and scope, granted by the administrator through the catalog.
        tag = uuid.uuid4().hex[:6]
        users: list[tuple[Role, tuple[str, str], Actor]] = []
        rule_ids: list[str] = []
        for role in ROLES:
            for scope in SCOPES:
                label = "-".join(p for p in (role.short.lower(), *scope, tag) if p)
                actor = Actor(email=f"{label}@example.com")
                reply = await ask(
                    nc,
                    RPC_ACCESS_RULES_CREATE,
                    AccessRuleCreateRequest(
                        actor=ADMIN,
                        subjectId=actor.email,
                        roleName=role.name,
                        scopeType=scope[0],  # type: ignore[arg-type]
                        scopeId=scope[1],
                    ),
                    AccessRuleReply,
                    timeout=10,
                )
                assert reply.accessRule is not None, reply.error
                users.append((role, scope, actor))
                rule_ids.append(reply.accessRule.id)

        # Every enforcing service has every rule in its own copy before anyone acts.
        async def copies_complete() -> bool:
            async with services[0].engine.connect() as conn:
                for schema in ENFORCERS:
                    count = await conn.scalar(
                        text(
                            f"SELECT count(*) FROM {schema}.access_rules "
                            "WHERE id = ANY(:ids) AND NOT deleted"
                        ),
                        {"ids": rule_ids},
                    )
                    if count != len(rule_ids):
                        return False
            return True

        await eventually(copies_complete, timeout=60, interval=0.2)

        # The administrator's training in team-a, which the others try to read and act on.
        target = SubmissionRequestedV1(
            source="/berth/tests",
            subject=uuid.uuid4().hex,
            actor=ADMIN,
            data=SubmissionRequestedData(submission=submission(f"target-{tag}")),
        )
        await publish(js, target)
        await eventually(lambda: answers.by_cause.get(str(target.id)), timeout=30)
        assert answers.by_cause[str(target.id)] == "submission.received"

        # Events: a submission, a suspend, a delete and a cluster setting per user.
        asked: dict[str, tuple[str, bool, str]] = {}  # request id -> (allowed, refused, what)
        for role, scope, actor in users:
            who = f"{role.name} at {scope}"
            submit = SubmissionRequestedV1(
                source="/berth/tests",
                subject=uuid.uuid4().hex,
                actor=actor,
                data=SubmissionRequestedData(submission=submission(f"m-{uuid.uuid4().hex[:8]}")),
            )
            allowed = may(role, "trainings.create", scope, TEAM_A)
            asked[str(submit.id)] = ("submission.received", allowed, f"{who}: submit")
            config = ClusterConfigRequestedV1(
                source="/berth/tests",
                subject="local",
                actor=actor,
                data=ClusterConfigRequestedData(
                    clusterId="local", settings=ClusterSettings(workloadOwnershipProtection=False)
                ),
            )
            allowed = may(role, "cluster-config.update", scope, CLUSTER)
            asked[str(config.id)] = ("cluster.config-desired", allowed, f"{who}: configure")
            await publish(js, submit)
            await publish(js, config)

        # Suspending and deleting the target, once intake has received it (ownership asks
        # intake who created it).
        async def owned() -> bool:
            async with services[0].engine.connect() as conn:
                found = await conn.scalar(
                    text(
                        "SELECT count(*) FROM intake.workloads WHERE id = :id AND ref IS NOT NULL"
                    ),
                    {"id": target.subject},
                )
            return bool(found)

        await eventually(owned, timeout=30)
        for role, scope, actor in users:
            for action in ("suspend", "delete"):
                request = WorkloadActionRequestedV1(
                    source="/berth/tests",
                    subject=target.subject,
                    actor=actor,
                    data=WorkloadActionData(
                        action=action,  # type: ignore[arg-type]
                        name=f"target-{tag}",
                        project="team-a",
                    ),
                )
                permission = "update" if action == "suspend" else "delete"
                allowed = may(role, f"trainings.{permission}", scope, TEAM_A)
                asked[str(request.id)] = (
                    "workload.action-authorized",
                    allowed,
                    f"{role.name} at {scope}: {action}",
                )
                await publish(js, request)

        # Request-reply: read the list, apply a policy, create an environment.
        mismatches: list[str] = []
        for role, scope, actor in users:
            who = f"{role.name} at {scope}"
            listed = await ask(
                nc,
                RPC_WORKLOADS_LIST,
                WorkloadQuery(project="team-a", actor=actor, limit=1000),
                WorkloadListReply,
                timeout=10,
            )
            sees = f"target-{tag}" in {w.name for w in listed.workloads}
            if sees != may(role, "workloads.read", scope, TEAM_A):
                mismatches.append(f"{who}: list shows the target: {sees}")
            applied = await ask(
                nc,
                RPC_POLICY_APPLY,
                PolicyApplyRequest(
                    actor=actor,
                    type="training",
                    meta=PolicyMeta(scope="project", projectId="team-a"),
                    policy=PolicyDocument.model_validate({"defaults": {"backoffLimit": 3}}),
                ),
                PolicyReply,
                timeout=10,
            )
            if applied.ok != may(role, "policies.update", scope, TEAM_A):
                mismatches.append(f"{who}: policy apply ok={applied.ok} {applied.issues}")
            put = await ask(
                nc,
                RPC_CATALOG_ASSETS_PUT,
                AssetPutRequest(
                    actor=actor,
                    kind="environment",
                    name=f"env-{uuid.uuid4().hex[:8]}",
                    scope="project",
                    scopeName="team-a",
                    spec={"image": "busybox"},
                ),
                AssetReply,
                timeout=10,
            )
            if (put.error is None) != may(role, "environments.create", scope, TEAM_A):
                mismatches.append(f"{who}: environment create error={put.error}")

        await eventually(lambda: all(k in answers.by_cause for k in asked), timeout=90)
        for key, (granted_answer, allowed, what) in asked.items():
            if (answers.by_cause[key] == granted_answer) != allowed:
                mismatches.append(f"{what}: answered {answers.by_cause[key]}, expected {allowed}")
        assert not mismatches, "\n".join(mismatches)
        assert len(asked) == len(users) * 4
    await _pull_requests_expired(
        nc, ("intake-", "catalog-", "policy-", "ownership-", "cluster-sync-")
    )
    await asyncio.sleep(0)
