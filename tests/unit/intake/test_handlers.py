"""The intake handlers as specifications: a fake unit of work and the in-memory store, no server.

The same handlers run in the service on PostgreSQL and NATS (tests/integration/catalog,
tests/e2e); here each one is driven directly, as the batch runner or the responder would call it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span

from berth.contracts import boundaries
from berth.contracts.catalog import AssetRef, AssetView
from berth.contracts.envelope import Actor, RawEvent
from berth.contracts.events import (
    AssetChangedData,
    CatalogAssetChangedV1,
    ClusterConfig,
    ClusterRecord,
    ClusterUpdatedV1,
    Issue,
    PolicyApprovedData,
    PolicyApprovedV1,
    PolicyRejectedData,
    PolicyRejectedV1,
    SubmissionReceivedV1,
    SubmissionRejectedV1,
    WorkloadPhaseChangedData,
    WorkloadPhaseChangedV1,
    WorkloadRef,
)
from berth.contracts.queries import DryRunRequest, ProjectInfo
from berth.intake import handlers, validation
from berth.intake.catalog_client import ResilientCatalog
from berth.intake.projection import project_info
from berth.shared.errors import TransientError
from berth.shared.testing import FakeUnitOfWork, incoming
from tests.unit.access_builders import rule
from tests.unit.intake.intake_fakes import InMemoryIntakeStore

pytestmark = pytest.mark.unit

USER = Actor(email="user@example.com")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def project_view(name: str, *, quota_gpus: float | None = None) -> AssetView:
    spec: dict[str, Any] = {
        "department": "research",
        "clusterId": "local",
        "namespace": f"ns-{name}",
        "queue": f"q-{name}",
    }
    if quota_gpus is not None:
        spec["quota"] = [{"nodePool": "a100", "gpu": {"deserved": quota_gpus}}]
    return AssetView(id=f"project-{name}", kind="project", name=name, spec=spec)


class Catalog:
    """The catalog service as intake's directory sees it: projects and assets, or down."""

    def __init__(self, *views: AssetView) -> None:
        self.views = list(views)
        self.down = False

    async def lookup(self, requests: Sequence[tuple[str, Span]]) -> dict[str, ProjectInfo]:
        if self.down:
            raise TransientError("no responders on rpc.catalog.projects.lookup.v1")
        wanted = {p for p, _ in requests}
        return {
            v.name: project_info(v) for v in self.views if v.kind == "project" and v.name in wanted
        }

    async def assets(self, refs: Sequence[AssetRef], span: Span) -> list[AssetView]:
        if self.down:
            raise TransientError("no responders on rpc.catalog.assets.resolve.v1")
        wanted = {(r.kind, r.name) for r in refs}
        return [v for v in self.views if (v.kind, v.name) in wanted]


def submission(
    name: str = "demo", project: str = "team-a", *, gpus: int = 1, **extra: Any
) -> dict[str, Any]:
    return {
        "kind": "training",
        "name": name,
        "projectId": project,
        "spec": {"image": "pytorch/pytorch", "compute": {"gpuDevicesRequest": gpus}},
        **extra,
    }


def requested(
    sub: dict[str, Any], *, workload_id: str | None = None, dry_run: bool | None = None
) -> RawEvent:
    data: dict[str, Any] = {"submission": sub}
    if dry_run is not None:
        data["dryRun"] = dry_run
    return RawEvent(
        type="berth.submission.requested",
        version=1,
        source="/berth/ui",
        subject=workload_id or uuid.uuid4().hex,
        actor=USER,
        data=data,
    )


def ref_of(workload_id: str) -> WorkloadRef:
    return WorkloadRef(
        workloadId=workload_id,
        name="demo",
        kind="training",
        project="team-a",
        department="research",
        clusterId="local",
        namespace="ns-team-a",
        queue="q-team-a",
        createdBy=USER.email,
    )


class Intake:
    """The intake service's handlers over one in-memory store, with cluster ``local``
    registered and project ``team-a`` in the catalog."""

    def __init__(self, *views: AssetView) -> None:
        self.store = InMemoryIntakeStore()
        self.catalog = Catalog(*(views or (project_view("team-a"),)))
        self.directory = ResilientCatalog(self.catalog, self.store.read)

    async def register_cluster(self, cluster_id: str = "local", at: datetime = NOW) -> None:
        record = ClusterRecord(
            clusterId=cluster_id, backend="simulated", config=ClusterConfig(), reportedAt=at
        )
        event = ClusterUpdatedV1(
            source="/berth/cluster-sync", subject=cluster_id, actor=USER, data=record
        )
        await handlers.record_cluster_updates(
            [incoming(event)], FakeUnitOfWork(self.store), store=self.store.of
        )

    async def catalog_event(
        self, view: AssetView, change: str = "updated", at: datetime = NOW
    ) -> None:
        event = CatalogAssetChangedV1(
            source="/berth/catalog",
            subject=view.id,
            actor=USER,
            time=at,
            data=AssetChangedData.model_validate(
                {
                    "change": change,
                    "assetKind": view.kind,
                    "assetId": view.id,
                    "name": view.name,
                    "asset": view.model_dump(mode="json"),
                }
            ),
        )
        await handlers.record_catalog_changes(
            [incoming(event)], FakeUnitOfWork(self.store), store=self.store.of
        )

    async def submit(self, *events: RawEvent) -> FakeUnitOfWork:
        uow = FakeUnitOfWork(self.store)
        async with uow:
            await handlers.accept_submissions(
                [incoming(e, operation="accept submission") for e in events],
                uow,
                directory=self.directory,
                store=self.store.of,
            )
        return uow

    async def received(self, sub: dict[str, Any]) -> SubmissionReceivedV1:
        (event,) = (await self.submit(requested(sub))).events_of(SubmissionReceivedV1)
        return event

    async def phase(
        self,
        workload_id: str,
        phase: str,
        at: datetime,
        message: str = "",
        history: list[dict[str, Any]] | None = None,
    ) -> None:
        event = WorkloadPhaseChangedV1(
            source="/berth/scheduler-adapter",
            subject=workload_id,
            actor=USER,
            time=at,
            data=WorkloadPhaseChangedData.model_validate(
                {
                    "workload": ref_of(workload_id),
                    "phase": phase,
                    "message": message,
                    "history": history or [],
                }
            ),
        )
        await handlers.record_phases([incoming(event)], FakeUnitOfWork(), store=self.store.of)


async def intake(*views: AssetView) -> Intake:
    service = Intake(*views)
    await service.register_cluster()
    return service


def issues_of(uow: FakeUnitOfWork) -> list[tuple[str, str]]:
    (rejected,) = uow.events_of(SubmissionRejectedV1)
    return [(i.field, i.details) for i in rejected.data.issues]


# --- accepting submissions --------------------------------------------------------------------


class TestAcceptSubmissions:
    async def test_a_valid_submission_is_received_in_its_projects_namespace_queue_and_cluster(
        self,
    ) -> None:
        service = await intake()

        event = requested(submission())
        uow = await service.submit(event)

        (received,) = uow.events_of(SubmissionReceivedV1)
        ref = received.data.workload
        assert (ref.workloadId, ref.name, ref.project) == (event.subject, "demo", "team-a")
        assert (ref.namespace, ref.queue, ref.clusterId) == ("ns-team-a", "q-team-a", "local")
        assert ref.createdBy == USER.email
        assert uow.cause_of(received) is not None
        stored = service.store.workload(event.subject)
        assert stored is not None and stored.status == "received"

    async def test_a_bad_submission_is_rejected_naming_the_field_and_why_and_recorded(
        self,
    ) -> None:
        service = await intake()

        event = requested(submission(gpus=-1))
        uow = await service.submit(event)

        assert issues_of(uow) == [("spec.compute.gpuDevicesRequest", "must be at least 0; got -1")]
        assert uow.events_of(SubmissionReceivedV1) == []
        stored = service.store.workload(event.subject)
        assert stored is not None and stored.status == "rejected"
        assert stored.row.submission["submission"]["spec"]["compute"]["gpuDevicesRequest"] == -1

    async def test_an_oversized_submission_is_rejected_and_recorded_without_its_content(
        self,
    ) -> None:
        service = await intake()
        padding = "x" * (boundaries.MAX_SUBMISSION_BYTES + 1)

        event = requested(submission(annotations={"pad": padding}))
        uow = await service.submit(event)

        assert uow.events_of(SubmissionRejectedV1)
        stored = service.store.workload(event.subject)
        assert stored is not None and "omitted" in stored.row.submission

    async def test_an_unknown_project_is_refused_by_name(self) -> None:
        service = await intake()

        uow = await service.submit(requested(submission(project="nowhere")))

        assert issues_of(uow) == [("projectId", 'project "nowhere" does not exist')]

    async def test_a_name_held_by_a_live_workload_is_refused(self) -> None:
        service = await intake()
        await service.received(submission("demo"))

        uow = await service.submit(requested(submission("demo")))

        assert issues_of(uow) == [("name", '"demo" already exists in project "team-a"')]

    async def test_a_rejected_workload_does_not_hold_its_name(self) -> None:
        service = await intake()
        await service.submit(requested(submission("demo", gpus=-1)))

        received = await service.received(submission("demo"))

        assert received.data.workload.name == "demo"

    async def test_two_submissions_of_one_name_in_one_batch_receive_only_the_first(self) -> None:
        service = await intake()

        uow = await service.submit(requested(submission("demo")), requested(submission("demo")))

        assert [e.data.workload.name for e in uow.events_of(SubmissionReceivedV1)] == ["demo"]
        assert issues_of(uow) == [("name", '"demo" already exists in project "team-a"')]

    async def test_another_submission_under_a_taken_workload_id_is_refused_and_not_recorded(
        self,
    ) -> None:
        service = await intake()
        first = requested(submission("demo"))
        await service.submit(first)

        uow = await service.submit(requested(submission("other"), workload_id=first.subject))

        assert issues_of(uow) == [
            ("subject", f"workload id {first.subject} is already used by a different submission")
        ]
        stored = service.store.workload(first.subject)
        assert stored is not None and stored.row.name == "demo"

    async def test_a_retry_of_the_same_submission_is_ignored(self) -> None:
        service = await intake()
        first = requested(submission("demo"))
        await service.submit(first)

        retry = first.model_copy(update={"id": uuid.uuid4()})
        uow = await service.submit(retry)

        assert uow.events == []
        assert len(service.store.workloads) == 1

    async def test_an_unregistered_cluster_is_refused_naming_it_and_the_known_ones(self) -> None:
        service = await intake()

        uow = await service.submit(requested(submission(clusterId="edge")))

        assert issues_of(uow) == [("clusterId", 'cluster "edge" is not registered (known: local)')]

    async def test_an_unknown_node_pool_is_refused_once_the_catalog_is_known(self) -> None:
        service = await intake()
        await service.catalog_event(AssetView(id="np-a100", kind="nodepool", name="a100"))
        sub = submission()
        sub["spec"]["nodePools"] = ["a100", "h200"]

        uow = await service.submit(requested(sub))

        assert issues_of(uow) == [("spec.nodePools.1", 'node pool "h200" does not exist')]

    async def test_use_given_name_as_prefix_generates_a_unique_name(self) -> None:
        service = await intake()
        await service.received(submission("demo"))

        uow = await service.submit(
            requested(submission("demo", useGivenNameAsPrefix=True)),
            requested(submission("demo", useGivenNameAsPrefix=True)),
        )

        names = [e.data.workload.name for e in uow.events_of(SubmissionReceivedV1)]
        assert len(set(names)) == 2
        assert all(n.startswith("demo-") for n in names)
        assert all(
            e.data.submission.name == e.data.workload.name
            for e in uow.events_of(SubmissionReceivedV1)
        )

    async def test_a_submission_past_its_projects_deserved_gpus_is_marked_over_quota(
        self,
    ) -> None:
        team = project_view("team-a", quota_gpus=4)
        service = await intake(team)
        await service.catalog_event(team)

        uow = await service.submit(
            requested(submission("first", gpus=3)), requested(submission("second", gpus=2))
        )

        first, second = (e.data.workload for e in uow.events_of(SubmissionReceivedV1))
        assert (first.overQuota, first.quotaGpus) == (False, 4)
        assert second.overQuota is True
        assert second.quotaReason == (
            "requests 2 GPU while project team-a uses 3 of its deserved 4"
        )

    async def test_a_finished_workload_no_longer_counts_against_quota(self) -> None:
        team = project_view("team-a", quota_gpus=4)
        service = await intake(team)
        await service.catalog_event(team)
        done = await service.received(submission("done", gpus=4))
        await service.phase(done.subject, "Completed", NOW)

        received = await service.received(submission("next", gpus=4))

        assert received.data.workload.overQuota is False

    async def test_while_the_catalog_is_down_projects_come_from_intakes_copy(self) -> None:
        team = project_view("team-a")
        service = await intake(team)
        await service.catalog_event(team)
        service.catalog.down = True

        event = requested(submission())
        uow = await service.submit(event)

        (received,) = uow.events_of(SubmissionReceivedV1)
        assert received.data.workload.namespace == "ns-team-a"
        assert uow.cause_of(received).span.attributes["berth.catalog.source"] == "projection"  # type: ignore[union-attr, index]

    async def test_a_project_deleted_from_intakes_copy_is_unknown_while_the_catalog_is_down(
        self,
    ) -> None:
        team = project_view("team-a")
        service = await intake(team)
        await service.catalog_event(team, at=NOW)
        await service.catalog_event(team, change="deleted", at=NOW + timedelta(seconds=1))
        await service.catalog_event(team, at=NOW)  # late, older: changes nothing
        service.catalog.down = True

        uow = await service.submit(requested(submission()))

        assert issues_of(uow) == [("projectId", 'project "team-a" does not exist')]


# --- dry runs -------------------------------------------------------------------------------


class TestDryRun:
    async def test_a_dry_run_submission_creates_no_workload_and_says_it_would_be_received(
        self,
    ) -> None:
        service = await intake()

        uow = await service.submit(requested(submission(), dry_run=True))

        (answer,) = uow.events_of(SubmissionRejectedV1)
        assert answer.data.dryRun is True
        assert [(i.field, i.details) for i in answer.data.issues] == [
            ("dryRun", "dry run: the submission would be received; nothing created")
        ]
        assert uow.events_of(SubmissionReceivedV1) == []
        assert len(service.store.workloads) == 0

    async def test_a_dry_run_names_what_is_wrong_and_records_nothing(self) -> None:
        service = await intake()
        await service.received(submission("demo"))

        uow = await service.submit(
            requested(submission("demo", clusterId="edge"), dry_run=True),
            requested(submission("bad", gpus=-1), dry_run=True),
        )

        # Submissions that do not validate are answered first, then those judged.
        invalid, taken = uow.events_of(SubmissionRejectedV1)
        assert taken.data.dryRun and invalid.data.dryRun
        assert [i.field for i in taken.data.issues] == ["clusterId", "name"]
        assert [i.field for i in invalid.data.issues] == ["spec.compute.gpuDevicesRequest"]
        assert len(service.store.workloads) == 1

    async def test_a_dry_run_neither_takes_a_name_nor_gpus_from_the_rest_of_its_batch(
        self,
    ) -> None:
        team = project_view("team-a", quota_gpus=4)
        service = await intake(team)
        await service.catalog_event(team)

        uow = await service.submit(
            requested(submission("demo", gpus=4), dry_run=True),
            requested(submission("demo", gpus=4)),
        )

        (received,) = uow.events_of(SubmissionReceivedV1)
        assert received.data.workload.overQuota is False

    async def test_the_dry_run_query_is_judged_by_the_same_pipeline_quota_included(
        self,
    ) -> None:
        team = project_view("team-a", quota_gpus=4)
        service = await intake(team)
        await service.catalog_event(team)
        await service.received(submission("demo", gpus=4))
        span = incoming(requested(submission())).span
        candidate = handlers.Candidate(
            workload_id=None,
            data={"submission": submission("other", gpus=1)},
            submission=validation.parse(
                "dry-run", {"submission": submission("other", gpus=1)}
            ).submission,  # type: ignore[union-attr]
            actor=USER,
            span=span,
            dry_run=True,
        )

        (verdict,) = await handlers.decide([candidate], service.store, service.directory)

        assert isinstance(verdict, handlers.Accepted)
        assert verdict.ref.overQuota is True

    async def test_the_dry_run_query_answers_a_taken_name_without_asking_policy(self) -> None:
        service = await intake()
        await service.received(submission("demo"))

        def no_bus() -> Any:
            raise AssertionError("a refused dry run asks no one")

        reply = await handlers.dry_run(
            DryRunRequest(actor=USER, submission=submission("demo")),
            reader=service.store.read,
            directory=service.directory,
            nc=no_bus,
            tracer=TracerProvider().get_tracer("test"),
            timeout=1.0,
        )

        assert reply.issues == [
            Issue(field="name", details='"demo" already exists in project "team-a"')
        ]
        assert len(service.store.workloads) == 1


# --- the read model -------------------------------------------------------------------------


class TestReadModel:
    async def test_an_approval_records_the_effective_spec(self) -> None:
        service = await intake()
        received = await service.received(submission())
        spec = received.data.submission.model_copy(update={"name": "demo"})
        event = PolicyApprovedV1(
            source="/berth/policy",
            subject=received.subject,
            actor=USER,
            data=PolicyApprovedData(workload=received.data.workload, effectiveSpec=spec),
        )

        await handlers.record_approvals([incoming(event)], FakeUnitOfWork(), store=service.store.of)

        stored = service.store.workload(received.subject)
        assert stored is not None and stored.status == "approved"
        assert stored.effective_spec == spec.model_dump(mode="json", exclude_none=True)

    async def test_a_policy_rejection_records_the_issues_and_frees_the_name(self) -> None:
        service = await intake()
        received = await service.received(submission("demo"))
        event = PolicyRejectedV1(
            source="/berth/policy",
            subject=received.subject,
            actor=USER,
            data=PolicyRejectedData(
                workload=received.data.workload,
                complianceIssues=[Issue(field="compute.gpuDevicesRequest", details="too many")],
            ),
        )

        await handlers.record_policy_rejections(
            [incoming(event)], FakeUnitOfWork(), store=service.store.of
        )

        stored = service.store.workload(received.subject)
        assert stored is not None and stored.status == "rejected"
        assert stored.issues == [{"field": "compute.gpuDevicesRequest", "details": "too many"}]
        assert (await service.received(submission("demo"))).data.workload.name == "demo"

    async def test_phases_are_all_kept_and_the_current_one_moves_only_forward_in_time(
        self,
    ) -> None:
        service = await intake()
        wid = (await service.received(submission())).subject

        await service.phase(wid, "Running", NOW + timedelta(seconds=2), "started")
        await service.phase(wid, "Pending", NOW + timedelta(seconds=1))  # late

        stored = service.store.workload(wid)
        assert stored is not None
        assert (stored.phase, stored.status, stored.phase_message) == (
            "Running",
            "Running",
            "started",
        )
        assert service.store.phases_of(wid) == ["Running", "Pending"]

    async def test_an_event_reporting_several_transitions_records_each_in_the_history(
        self,
    ) -> None:
        service = await intake()
        wid = (await service.received(submission())).subject
        history = [
            {"phase": "Creating", "time": NOW.isoformat()},
            {
                "phase": "Initializing",
                "previousPhase": "Creating",
                "time": (NOW + timedelta(seconds=1)).isoformat(),
                "message": "pulling",
                "requestedPods": 1,
            },
        ]

        await service.phase(wid, "Running", NOW + timedelta(seconds=2), history=history)

        stored = service.store.workload(wid)
        assert stored is not None and (stored.phase, stored.phase_at) == (
            "Running",
            NOW + timedelta(seconds=2),
        )
        assert service.store.phases_of(wid) == ["Creating", "Initializing", "Running"]
        recorded = [c for c in service.store.history if c.workload_id == wid]
        assert [(c.at, c.message, c.requested_pods) for c in recorded[:2]] == [
            (NOW, "", 0),
            (NOW + timedelta(seconds=1), "pulling", 1),
        ]

    async def test_a_terminal_phase_is_final(self) -> None:
        service = await intake()
        wid = (await service.received(submission())).subject

        await service.phase(wid, "Completed", NOW)
        await service.phase(wid, "Running", NOW + timedelta(seconds=1))

        stored = service.store.workload(wid)
        assert stored is not None and stored.phase == "Completed"

    async def test_a_deleted_workload_frees_its_name(self) -> None:
        service = await intake()
        wid = (await service.received(submission("demo"))).subject
        await service.phase(wid, "Deleted", NOW)

        assert (await service.received(submission("demo"))).data.workload.name == "demo"

    async def test_an_older_cluster_report_does_not_replace_a_newer_one(self) -> None:
        service = Intake()
        await service.register_cluster("edge", at=NOW + timedelta(seconds=5))
        await service.register_cluster("edge", at=NOW)

        stored = service.store.clusters.get("edge")
        assert stored is not None and stored.reportedAt == NOW + timedelta(seconds=5)


# --- access rules ------------------------------------------------------------------------------


class TestAccessRules:
    async def test_a_submission_where_no_rule_allows_it_is_rejected_naming_who_what_where(
        self,
    ) -> None:
        service = await intake(project_view("team-a"), project_view("team-b"))
        service.store.rules.rules.clear()
        await service.store.rules.record_created(
            [rule(USER.email, "L1 researcher", "department", "research")]
        )
        assert await service.received(submission("ok", "team-b"))
        service.store.rules.rules.clear()
        await service.store.rules.record_created(
            [rule(USER.email, "L1 researcher", "project", "team-b")]
        )
        # A name taken in team-a: only the refusal is said, nothing about the project's state.
        service.store.rules.rules.clear()
        await service.store.rules.record_created([rule(USER.email, "L1 researcher")])
        assert await service.received(submission("taken", "team-a"))
        service.store.rules.rules.clear()
        await service.store.rules.record_created(
            [rule(USER.email, "L1 researcher", "project", "team-b")]
        )
        uow = await service.submit(requested(submission("taken", "team-a")))
        assert issues_of(uow) == [
            (
                "actor",
                "forbidden: user@example.com may not submit trainings in project team-a "
                "(no access rule grants trainings.create there)",
            )
        ]
        assert service.store.workload(uow.events[0].subject) is not None  # recorded, rejected

    async def test_an_ml_engineer_may_serve_but_not_train(self) -> None:
        service = await intake()
        service.store.rules.rules.clear()
        await service.store.rules.record_created([rule(USER.email, "ML engineer")])
        uow = await service.submit(requested(submission("t")))
        assert issues_of(uow)[0][1].startswith(
            "forbidden: user@example.com may not submit trainings in project team-a"
        )

    async def test_a_dry_run_is_refused_the_same_way(self) -> None:
        service = await intake()
        service.store.rules.rules.clear()

        def no_bus() -> Any:
            raise AssertionError("a refused dry run asks no one")

        reply = await handlers.dry_run(
            DryRunRequest(actor=USER, submission=submission("demo")),
            reader=service.store.read,
            directory=service.directory,
            nc=no_bus,
            tracer=TracerProvider().get_tracer("test"),
            timeout=1.0,
        )
        assert [i.field for i in reply.issues] == ["actor"]


# --- the catalog's answer and the reads, together ----------------------------------------------


class AnswersAfterReads(Catalog):
    """A catalog that answers only once intake has read its node pools and clusters: intake
    awaits its answer while those reads make their round trips, not before them."""

    def __init__(self, *views: AssetView) -> None:
        super().__init__(*views)
        self.reads_done = asyncio.Event()

    async def lookup(self, requests: Sequence[tuple[str, Span]]) -> dict[str, ProjectInfo]:
        await self.reads_done.wait()
        return await super().lookup(requests)


class TestCatalogLookupOverlapsTheReads:
    async def submit(
        self, service: Intake, catalog: AnswersAfterReads, *, failing_read: bool = False
    ) -> FakeUnitOfWork:
        def store_of(unit: Any) -> Any:
            db = service.store.of(unit)

            class Watched:
                def __getattr__(self, name: str) -> Any:
                    return getattr(db, name)

                async def judging(self, names: Any, ids: Any, projects: Any) -> Any:
                    if failing_read:
                        raise RuntimeError("the read failed")
                    read = await db.judging(names, ids, projects)
                    catalog.reads_done.set()
                    return read

            return Watched()

        uow = FakeUnitOfWork(service.store)
        async with uow:
            await handlers.accept_submissions(
                [incoming(requested(submission()), operation="accept submission")],
                uow,
                directory=ResilientCatalog(catalog, service.store.read),
                store=store_of,
            )
        return uow

    async def test_the_submission_is_judged_with_the_answer_that_came_after_the_reads(
        self,
    ) -> None:
        service = await intake()
        catalog = AnswersAfterReads(project_view("team-a"))

        # Bounded only so that a look-up awaited before the reads fails instead of hanging.
        uow = await asyncio.wait_for(self.submit(service, catalog), timeout=30)

        (received,) = uow.events_of(SubmissionReceivedV1)
        assert received.data.workload.project == "team-a"

    async def test_a_failing_read_fails_the_batch_and_the_look_up_is_dropped(self) -> None:
        service = await intake()
        catalog = AnswersAfterReads(project_view("team-a"))

        # Tasks of earlier tests may still run on the shared loop: only new ones count.
        before = asyncio.all_tasks()
        with pytest.raises(RuntimeError, match="the read failed"):
            await self.submit(service, catalog, failing_read=True)
        # Nothing left waiting for the catalog behind the failed batch.
        assert asyncio.all_tasks() - before == set()
        assert not catalog.reads_done.is_set()
