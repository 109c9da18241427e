"""The policy handlers as specifications: a fake unit of work and the in-memory store, no server.

The same handlers run in the service on PostgreSQL and NATS (tests/integration/policy); here
each one is driven directly, as the batch runner or the request-reply responder would call it.
"""

from __future__ import annotations

import uuid
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
    PolicyAction,
    PolicyApplyRequest,
    PolicyChangedV1,
    PolicyChangeRejectedV1,
    PolicyChangeRequestedData,
    PolicyChangeRequestedV1,
    PolicyDeleteRequest,
    PolicyDocument,
    PolicyEffectiveRequest,
    PolicyGetRequest,
    PolicyListRequest,
    PolicyMeta,
    PolicyPatchRequest,
    ScopeRef,
    policy_subject,
)
from berth.contracts.queries import EvaluateRequest, ProjectInfo
from berth.policy import handlers
from berth.policy.store import CompiledCache
from berth.shared.errors import TransientError
from berth.shared.testing import FakeUnitOfWork, incoming
from tests.unit.access_builders import rule, rules
from tests.unit.policy.policy_fakes import InMemoryPolicyStore

pytestmark = pytest.mark.unit

ADMIN = Actor(email="admin@example.com")
USER = Actor(email="user@example.com")

PROJECTS = {
    "team-a": ProjectInfo(
        name="team-a", department="research", clusterId="local", namespace="ns-a", queue="team-a"
    ),
    "team-b": ProjectInfo(
        name="team-b", department="research", clusterId="local", namespace="ns-b", queue="team-b"
    ),
    "lab": ProjectInfo(
        name="lab", department="physics", clusterId="local", namespace="ns-lab", queue="lab"
    ),
}

DEPARTMENT = PolicyMeta(scope="department", departmentId="research", clusterId="local")
PROJECT = PolicyMeta(scope="project", projectId="team-a")  # department looked up in the catalog

GPU_MAX_2: dict[str, Any] = {
    "defaults": {
        "backoffLimit": 3,
        "nodePools": ["a100", "default"],
        "compute": {"cpuMemoryRequest": "16G", "gpuDevicesRequest": 1},
    },
    "rules": {
        "compute": {"gpuDevicesRequest": {"min": 0, "max": 2}},
        "imagePullPolicy": {"canEdit": False},
    },
}


async def catalog(project: str) -> ProjectInfo | None:
    return PROJECTS.get(project)


async def catalog_down(project: str) -> ProjectInfo | None:
    raise TransientError("no responders on rpc.catalog.projects.lookup.v1")


def received(spec: dict[str, Any], project: str = "team-a") -> SubmissionReceivedV1:
    info = PROJECTS[project]
    workload_id = uuid.uuid4().hex
    return SubmissionReceivedV1(
        source="/berth/intake",
        subject=workload_id,
        actor=USER,
        data=SubmissionReceivedData.model_validate(
            {
                "workload": WorkloadRef(
                    workloadId=workload_id,
                    name=f"w-{workload_id[:6]}",
                    kind="training",
                    project=project,
                    department=info.department,
                    clusterId=info.clusterId,
                    namespace=info.namespace,
                    queue=info.queue,
                    createdBy=USER.email,
                ),
                "submission": {
                    "kind": "training",
                    "name": "w",
                    "projectId": project,
                    "spec": {"image": "pytorch/pytorch", **spec},
                },
            }
        ),
    )


def requested(
    meta: PolicyMeta,
    doc: dict[str, Any] | None = None,
    action: PolicyAction = "apply",
    reset: list[str] | None = None,
) -> PolicyChangeRequestedV1:
    return PolicyChangeRequestedV1(
        source="/berth/ui",
        subject=policy_subject("training", meta),
        actor=ADMIN,
        data=PolicyChangeRequestedData(
            action=action,
            type="training",
            meta=meta,
            policy=None if doc is None else PolicyDocument.model_validate(doc),
            reset=reset or [],
        ),
    )


class Policies:
    """The policy service's handlers over one in-memory store."""

    def __init__(self, resolve: Any = catalog) -> None:
        self.store = InMemoryPolicyStore()
        self.cache = CompiledCache()
        self.resolve = resolve
        # The administrator may change every policy (access rules are tested on their own).
        self.rules = rules()
        self.writer = handlers.Writer(
            begin=FakeUnitOfWork(self.store, self.rules),
            resolve=resolve,
            policies=self.store.of,
            rules=lambda _unit: self.rules,
        )

    async def evaluate(self, *events: SubmissionReceivedV1) -> FakeUnitOfWork:
        uow = FakeUnitOfWork(self.store)
        items = [incoming(e, operation="evaluate") for e in events]
        await handlers.evaluate_submissions(items, uow, cache=self.cache, policies=self.store.of)
        return uow

    async def change(self, *events: PolicyChangeRequestedV1) -> FakeUnitOfWork:
        uow = FakeUnitOfWork(self.store)
        items = [incoming(e, operation="change policies") for e in events]
        await handlers.change_policies(
            items,
            uow,
            resolve=self.resolve,
            policies=self.store.of,
            rules=lambda _unit: self.rules,
        )
        return uow

    async def apply(self, meta: PolicyMeta, doc: dict[str, Any]) -> None:
        """A policy in place, as an administrator applies it."""
        (changed,) = (await self.change(requested(meta, doc))).events_of(PolicyChangedV1)
        assert changed.data.change == "applied"

    def apply_request(self, meta: PolicyMeta, doc: dict[str, Any]) -> PolicyApplyRequest:
        return PolicyApplyRequest(
            actor=ADMIN, type="training", meta=meta, policy=PolicyDocument.model_validate(doc)
        )


# --- evaluating submissions -------------------------------------------------------------------


class TestEvaluateSubmissions:
    async def test_a_submission_over_the_departments_gpu_max_is_rejected_naming_field_and_scope(
        self,
    ) -> None:
        policies = Policies()
        await policies.apply(DEPARTMENT, GPU_MAX_2)

        uow = await policies.evaluate(received({"compute": {"gpuDevicesRequest": 4}}))

        (rejected,) = uow.events_of(PolicyRejectedV1)
        assert [(i.field, i.details) for i in rejected.data.complianceIssues] == [
            (
                "compute.gpuDevicesRequest",
                "value must be no greater than 2 (rule from department research)",
            )
        ]
        assert uow.events_of(PolicyApprovedV1) == []

    async def test_every_violation_is_reported_not_only_the_first(self) -> None:
        policies = Policies()
        await policies.apply(DEPARTMENT, GPU_MAX_2)

        uow = await policies.evaluate(
            received({"compute": {"gpuDevicesRequest": 3}, "imagePullPolicy": "Always"})
        )

        (rejected,) = uow.events_of(PolicyRejectedV1)
        assert sorted(i.field for i in rejected.data.complianceIssues) == [
            "compute.gpuDevicesRequest",
            "imagePullPolicy",
        ]
        assert all(
            "rule from department research" in i.details for i in rejected.data.complianceIssues
        )

    async def test_an_approved_event_carries_the_effective_spec_with_policy_and_system_defaults(
        self,
    ) -> None:
        policies = Policies()
        await policies.apply(DEPARTMENT, GPU_MAX_2)
        await policies.apply(PROJECT, {"defaults": {"nodePools": ["default"]}})

        uow = await policies.evaluate(received({"compute": {"gpuDevicesRequest": 2}}))

        (approved,) = uow.events_of(PolicyApprovedV1)
        spec = approved.data.effectiveSpec.spec
        assert spec.compute is not None
        assert spec.compute.gpuDevicesRequest == 2  # submitted
        assert spec.compute.cpuMemoryRequest == "16G"  # the department's default
        assert spec.nodePools == ["default"]  # the project's default wins over the department's
        assert spec.backoffLimit == 3  # the policy's, not the system's 6
        assert spec.autoDeletionTimeAfterCompletionSeconds == 30 * 24 * 3600  # the system's

    async def test_with_no_policy_in_its_branch_a_submission_gets_the_system_defaults(
        self,
    ) -> None:
        uow = await Policies().evaluate(received({}))

        (approved,) = uow.events_of(PolicyApprovedV1)
        assert approved.data.effectiveSpec.spec.backoffLimit == 6

    async def test_a_department_rule_binds_its_own_projects_only(self) -> None:
        policies = Policies()
        await policies.apply(DEPARTMENT, GPU_MAX_2)

        uow = await policies.evaluate(
            received({"compute": {"gpuDevicesRequest": 4}}, project="team-b"),
            received({"compute": {"gpuDevicesRequest": 4}}, project="lab"),
        )

        assert [e.data.workload.project for e in uow.events_of(PolicyRejectedV1)] == ["team-b"]
        assert [e.data.workload.project for e in uow.events_of(PolicyApprovedV1)] == ["lab"]

    async def test_a_batch_reads_its_policies_once_and_each_verdict_joins_its_own_trace(
        self,
    ) -> None:
        policies = Policies()
        await policies.apply(DEPARTMENT, GPU_MAX_2)
        events = [
            received({"compute": {"gpuDevicesRequest": n}}, project=p)
            for n, p in [(1, "team-a"), (4, "team-b"), (4, "lab")]
        ]

        uow = await policies.evaluate(*events)

        assert policies.store.branch_reads == 1
        assert [e.subject for e in uow.events] == [e.subject for e in events]
        for emitted, event in zip(uow.emitted, events, strict=True):
            assert emitted.cause is not None
            assert emitted.cause.event is event
            assert emitted.event.correlationid == event.id
            assert emitted.event.causationid == event.id
            assert emitted.event.actor == event.actor
        outcomes = [e.cause.span.attributes["berth.outcome"] for e in uow.emitted]  # type: ignore[union-attr]
        assert outcomes == ["approved", "rejected", "approved"]

    async def test_each_outcome_is_recorded_and_a_duplicate_keeps_the_first(self) -> None:
        policies = Policies()
        event = received({"compute": {"gpuDevicesRequest": 4}})
        await policies.evaluate(event)  # no policy yet: approved
        await policies.apply(DEPARTMENT, GPU_MAX_2)

        # The same submission again (a redelivery the inbox no longer remembers).
        again = await policies.evaluate(event)

        assert len(again.events_of(PolicyRejectedV1)) == 1  # the sender still hears back
        recorded = policies.store.evaluations.get(event.data.workload.workloadId)
        assert recorded is not None
        assert recorded.outcome == "approved"

    async def test_a_dry_run_evaluates_the_same_way_and_records_nothing(self) -> None:
        policies = Policies()
        await policies.apply(DEPARTMENT, GPU_MAX_2)
        event = received({"compute": {"gpuDevicesRequest": 4}})

        reply = await handlers.evaluate_query(
            EvaluateRequest(workload=event.data.workload, submission=event.data.submission),
            read=policies.store.read,
            cache=policies.cache,
        )

        assert [i.field for i in reply.complianceIssues] == ["compute.gpuDevicesRequest"]
        assert len(policies.store.evaluations) == 0


# --- changing policies by events ----------------------------------------------------------------


class TestChangePolicies:
    async def test_an_applied_policy_is_stored_and_announced_with_its_version(self) -> None:
        policies = Policies()

        uow = await policies.change(requested(DEPARTMENT, GPU_MAX_2))

        (changed,) = uow.events_of(PolicyChangedV1)
        row = await policies.store.load("training", DEPARTMENT.ref)
        assert row is not None
        assert changed.data.change == "applied"
        assert changed.data.version == row.version
        assert changed.data.policy == PolicyDocument.model_validate(row.document)
        assert policies.store.locked == ["training"]

    async def test_a_policy_change_that_conflicts_with_an_owning_scope_is_rejected_naming_it(
        self,
    ) -> None:
        policies = Policies()
        await policies.apply(DEPARTMENT, GPU_MAX_2)

        uow = await policies.change(
            requested(PROJECT, {"rules": {"compute": {"gpuDevicesRequest": {"max": 1}}}})
        )

        (refused,) = uow.events_of(PolicyChangeRejectedV1)
        (issue,) = refused.data.issues
        assert issue.field == "compute.gpuDevicesRequest"
        assert 'already has rules in department: "research"' in issue.details
        assert await policies.store.load("training", PROJECT.ref) is None

    async def test_a_broader_rule_on_a_field_a_narrower_scope_rules_is_rejected_naming_it(
        self,
    ) -> None:
        policies = Policies()
        await policies.apply(PROJECT, {"rules": {"compute": {"gpuDevicesRequest": {"max": 1}}}})

        uow = await policies.change(requested(DEPARTMENT, GPU_MAX_2))

        (refused,) = uow.events_of(PolicyChangeRejectedV1)
        assert [(i.field, i.details) for i in refused.data.issues] == [
            (
                "compute.gpuDevicesRequest",
                'Field "compute.gpuDevicesRequest" already has rules in project: "team-a" '
                "(a narrower scope rules it: remove that rule first)",
            )
        ]

    async def test_only_broader_scopes_can_allow_overrides(self) -> None:
        overridable = {"rules": {"backoffLimit": {"max": 3, "allowOverride": True}}}

        uow = await Policies().change(requested(PROJECT, overridable))

        (refused,) = uow.events_of(PolicyChangeRejectedV1)
        assert [i.field for i in refused.data.issues] == ["rules.backoffLimit.allowOverride"]

    async def test_a_rule_the_owner_allows_to_override_can_only_be_tightened(self) -> None:
        policies = Policies()
        overridable = {
            "rules": {"compute": {"gpuDevicesRequest": {"max": 2, "allowOverride": True}}}
        }
        await policies.apply(DEPARTMENT, overridable)
        await policies.apply(PROJECT, {"rules": {"compute": {"gpuDevicesRequest": {"max": 8}}}})

        uow = await policies.evaluate(received({"compute": {"gpuDevicesRequest": 3}}))

        (rejected,) = uow.events_of(PolicyRejectedV1)
        assert rejected.data.complianceIssues[0].details == (
            "value must be no greater than 2 (rule from department research)"
        )

    async def test_a_project_policy_is_placed_in_its_department_by_the_catalog(self) -> None:
        policies = Policies()

        await policies.apply(PROJECT, {"defaults": {"backoffLimit": 2}})

        row = await policies.store.load("training", PROJECT.ref)
        assert row is not None
        assert (row.department_id, row.cluster_id) == ("research", "local")

    async def test_a_policy_for_an_unknown_project_is_rejected_naming_the_project(self) -> None:
        meta = PolicyMeta(scope="project", projectId="nowhere")

        uow = await Policies().change(requested(meta, {"defaults": {"backoffLimit": 2}}))

        (refused,) = uow.events_of(PolicyChangeRejectedV1)
        assert [(i.field, i.details) for i in refused.data.issues] == [
            ("meta.projectId", 'unknown project "nowhere"')
        ]

    async def test_a_malformed_policy_is_rejected_with_every_problem_named(self) -> None:
        doc = {
            "defaults": {"backoffLimit": "many"},
            "rules": {"compute": {"gpuDevicesRequest": {"min": 3, "max": 1}}, "nope": {}},
        }

        uow = await Policies().change(requested(DEPARTMENT, doc))

        (refused,) = uow.events_of(PolicyChangeRejectedV1)
        assert sorted(i.field for i in refused.data.issues) == [
            "defaults.backoffLimit",
            "rules.compute.gpuDevicesRequest",
            "rules.nope",
        ]

    async def test_changes_of_one_batch_apply_in_order(self) -> None:
        policies = Policies()

        uow = await policies.change(
            requested(DEPARTMENT, GPU_MAX_2),
            requested(DEPARTMENT, {}, action="patch", reset=["compute.gpuDevicesRequest"]),
            requested(DEPARTMENT, action="delete"),
            requested(DEPARTMENT, action="delete"),
        )

        changes = [e.data.change for e in uow.events_of(PolicyChangedV1)]
        assert changes == ["applied", "patched", "deleted"]
        patched = uow.events_of(PolicyChangedV1)[1].data.policy
        assert patched is not None
        assert patched.rules == {"imagePullPolicy": {"canEdit": False}}
        # A reset clears the path's default and rule alike.
        assert patched.defaults == {
            "backoffLimit": 3,
            "nodePools": ["a100", "default"],
            "compute": {"cpuMemoryRequest": "16G"},
        }
        (refused,) = uow.events_of(PolicyChangeRejectedV1)
        assert refused.data.issues[0].details == "no training policy in department research"
        assert [e.subject for e in uow.events] == [policy_subject("training", DEPARTMENT)] * 4

    async def test_a_catalog_outage_fails_the_batch_so_that_it_is_retried(self) -> None:
        policies = Policies(resolve=catalog_down)

        with pytest.raises(TransientError):
            await policies.change(requested(PROJECT, {"defaults": {"backoffLimit": 2}}))


# --- request-reply queries --------------------------------------------------------------------


class TestQueries:
    async def test_apply_stores_and_announces_in_one_unit_of_work(self) -> None:
        policies = Policies()
        uow = policies.writer.begin

        reply = await handlers.apply_query(
            policies.apply_request(DEPARTMENT, GPU_MAX_2), writer=policies.writer
        )

        assert reply.ok and reply.policy is not None
        assert isinstance(uow, FakeUnitOfWork)
        assert uow.commits == 1
        (changed,) = uow.events_of(PolicyChangedV1)
        assert changed.data.version == reply.policy.version
        assert changed.actor == ADMIN
        assert uow.cause_of(changed) is None  # a query starts its own trace

    async def test_validate_checks_everything_and_stores_and_announces_nothing(self) -> None:
        policies = Policies()
        await policies.apply(DEPARTMENT, GPU_MAX_2)
        conflicting = {"rules": {"compute": {"gpuDevicesRequest": {"max": 1}}}}

        refused = await handlers.validate_query(
            policies.apply_request(PROJECT, conflicting), writer=policies.writer
        )
        accepted = await handlers.validate_query(
            policies.apply_request(PROJECT, {"defaults": {"backoffLimit": 2}}),
            writer=policies.writer,
        )

        assert not refused.ok
        assert [i.field for i in refused.issues] == ["compute.gpuDevicesRequest"]
        assert accepted.ok and accepted.policy is not None and accepted.policy.version == 0
        assert await policies.store.load("training", PROJECT.ref) is None
        uow = policies.writer.begin
        assert isinstance(uow, FakeUnitOfWork)
        assert uow.events == []

    async def test_a_catalog_outage_is_answered_with_an_issue(self) -> None:
        policies = Policies(resolve=catalog_down)

        reply = await handlers.apply_query(
            policies.apply_request(PROJECT, {"defaults": {"backoffLimit": 2}}),
            writer=policies.writer,
        )

        assert not reply.ok
        assert reply.issues[0].field == "meta.projectId"
        assert reply.issues[0].details.startswith("cannot look the project up")

    async def test_patch_resets_the_named_paths_and_keeps_the_rest(self) -> None:
        policies = Policies()
        await policies.apply(DEPARTMENT, GPU_MAX_2)

        reply = await handlers.patch_query(
            PolicyPatchRequest(
                actor=ADMIN,
                type="training",
                meta=DEPARTMENT,
                policy=PolicyDocument.model_validate({"defaults": {"backoffLimit": 1}}),
                reset=["compute", "imagePullPolicy"],
            ),
            writer=policies.writer,
        )

        assert reply.ok and reply.policy is not None
        assert reply.policy.policy.rules == {}
        assert reply.policy.policy.defaults == {"backoffLimit": 1, "nodePools": ["a100", "default"]}

    async def test_deleting_a_policy_frees_its_rules_for_narrower_scopes(self) -> None:
        policies = Policies()
        await policies.apply(DEPARTMENT, GPU_MAX_2)
        delete = PolicyDeleteRequest(actor=ADMIN, type="training", meta=DEPARTMENT)

        deleted = await handlers.delete_query(delete, writer=policies.writer)
        again = await handlers.delete_query(delete, writer=policies.writer)
        await policies.apply(PROJECT, {"rules": {"compute": {"gpuDevicesRequest": {"max": 1}}}})

        assert deleted.ok
        assert not again.ok
        assert again.issues[0].details == "no training policy in department research"

    async def test_get_answers_the_stored_policy_or_names_what_is_missing(self) -> None:
        policies = Policies()
        await policies.apply(DEPARTMENT, GPU_MAX_2)

        found = await handlers.get_query(
            PolicyGetRequest(type="training", meta=DEPARTMENT), read=policies.store.read
        )
        missing = await handlers.get_query(
            PolicyGetRequest(type="inference", meta=DEPARTMENT), read=policies.store.read
        )

        assert found.policy is not None
        assert found.policy.updatedBy == ADMIN.email
        assert found.policy.meta.departmentId == "research"
        assert not missing.ok
        assert missing.issues[0].details == "no inference policy in department research"

    async def test_the_list_answers_every_stored_policy_by_type_scope_and_unit(self) -> None:
        policies = Policies()
        await policies.apply(DEPARTMENT, GPU_MAX_2)
        await policies.apply(PROJECT, {"defaults": {"nodePools": ["default"]}})

        async def listed(**given: Any) -> list[tuple[str, str | None]]:
            reply = await handlers.list_query(PolicyListRequest(**given), read=policies.store.read)
            return [(p.meta.scope, p.meta.scope_id) for p in reply.policies]

        assert await listed() == [("department", "research"), ("project", "team-a")]
        assert await listed(scope="project") == [("project", "team-a")]
        # A department's list holds the policies of its projects too.
        assert await listed(departmentId="research") == [
            ("department", "research"),
            ("project", "team-a"),
        ]
        assert await listed(projectId="team-a") == [("project", "team-a")]
        assert await listed(type="inference") == []

    async def test_the_effective_policy_names_the_scope_of_each_rule_and_default(self) -> None:
        policies = Policies()
        await policies.apply(DEPARTMENT, GPU_MAX_2)
        await policies.apply(PROJECT, {"defaults": {"nodePools": ["default"]}})

        reply = await handlers.effective_query(
            PolicyEffectiveRequest(type="training", projectId="team-a"),
            read=policies.store.read,
            cache=policies.cache,
            resolve=policies.resolve,
        )

        effective = reply.effective
        assert effective is not None
        assert effective.branch == [
            ScopeRef(scope="tenant"),
            ScopeRef(scope="cluster", id="local"),
            ScopeRef(scope="department", id="research"),
            ScopeRef(scope="project", id="team-a"),
        ]
        rules = {r.field: str(r.source) for r in effective.rules}
        defaults = {d.field: str(d.source) for d in effective.defaults}
        assert rules["compute.gpuDevicesRequest"] == "department research"
        assert defaults["nodePools"] == "project team-a"
        assert defaults["backoffLimit"] == "department research"


# --- access rules ------------------------------------------------------------------------------


class TestAccessRules:
    async def test_a_change_needs_a_rule_granting_policies_where_the_policy_lives(self) -> None:
        policies = Policies()
        await policies.rules.record_created(
            [rule(USER.email, "Department administrator", "project", "team-b")]
        )
        request = policies.apply_request(PROJECT, GPU_MAX_2).model_copy(update={"actor": USER})
        reply = await handlers.apply_query(request, writer=policies.writer)
        assert not reply.ok
        assert [(i.field, i.details) for i in reply.issues] == [
            (
                "actor",
                "forbidden: user@example.com may not apply policies in project team-a "
                "(no access rule grants policies.update there)",
            )
        ]
        team_b = PolicyMeta(scope="project", projectId="team-b")
        allowed = policies.apply_request(team_b, {"defaults": {"backoffLimit": 2}})
        assert (
            await handlers.apply_query(
                allowed.model_copy(update={"actor": USER}), writer=policies.writer
            )
        ).ok

    async def test_naming_another_department_does_not_move_a_project(self) -> None:
        """Decided on where the project is, not where the request says it is."""
        policies = Policies()
        await policies.rules.record_created(
            [rule(USER.email, "Department administrator", "department", "elsewhere")]
        )
        claimed = PolicyMeta(scope="project", projectId="team-a", departmentId="elsewhere")
        request = policies.apply_request(claimed, GPU_MAX_2).model_copy(update={"actor": USER})
        reply = await handlers.apply_query(request, writer=policies.writer)
        assert not reply.ok and reply.issues[0].field == "actor"

    async def test_an_l1_researcher_may_validate_but_not_apply(self) -> None:
        policies = Policies()
        await policies.rules.record_created([rule(USER.email, "L1 researcher")])
        request = policies.apply_request(PROJECT, GPU_MAX_2).model_copy(update={"actor": USER})
        assert (await handlers.validate_query(request, writer=policies.writer)).ok
        assert not (await handlers.apply_query(request, writer=policies.writer)).ok

    async def test_a_change_requested_by_event_without_a_rule_is_rejected(self) -> None:
        policies = Policies()
        event = requested(DEPARTMENT, GPU_MAX_2).model_copy(update={"actor": USER})
        uow = await policies.change(event)
        (rejected,) = uow.events_of(PolicyChangeRejectedV1)
        assert rejected.data.issues[0].details.startswith(
            "forbidden: user@example.com may not apply policies in department research"
        )
        assert uow.events_of(PolicyChangedV1) == []

    async def test_no_identity_is_refused(self) -> None:
        policies = Policies()
        reply = await handlers.delete_query(
            PolicyDeleteRequest.model_construct(actor=None, type="training", meta=PROJECT),
            writer=policies.writer,
        )
        assert not reply.ok and "anonymous" in reply.issues[0].details
