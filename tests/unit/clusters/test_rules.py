"""Clusters as identities: the clusterId check, which agent acts on what, the level-triggered
desired config and the protection ownership enforces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from opentelemetry.trace import INVALID_SPAN
from pydantic import TypeAdapter

from berth.cluster_sync.handlers import drift, record_of, same_state
from berth.contracts.capabilities import ClusterCapabilities
from berth.contracts.envelope import Actor
from berth.contracts.events import (
    ClusterConfig,
    ClusterConfigDesiredV1,
    ClusterConfigReportedData,
    ClusterConfigReportedV1,
    ClusterConfigRequestedData,
    ClusterSettings,
    PolicyApprovedData,
    PolicyApprovedV1,
    WorkloadRef,
)
from berth.contracts.queries import ProjectInfo
from berth.contracts.workload import WorkloadSubmission
from berth.intake.clusters import cluster_issues, unregistered
from berth.intake.handlers import cluster_of
from berth.ownership.rules import protection_in_force
from berth.scheduler_adapter.handlers import mine
from berth.scheduler_adapter.subscriptions import Durables
from berth.shared.consumer import Incoming

ACTOR = Actor(email="alice@example.com")


class TestClusterIdCheck:
    def test_a_registered_cluster_passes(self) -> None:
        assert unregistered("local", {"local", "edge"}) is None

    def test_an_unknown_cluster_is_named_with_the_known_ones(self) -> None:
        issue = unregistered("edge", {"local", "gpu-farm"})
        assert issue is not None
        assert issue.field == "clusterId"
        assert issue.details == 'cluster "edge" is not registered (known: gpu-farm, local)'

    def test_with_no_cluster_registered_yet(self) -> None:
        issue = unregistered("local", set())
        assert issue is not None
        assert issue.details == 'cluster "local" is not registered (known: none)'

    def test_a_submission_without_cluster_takes_its_projects(self) -> None:
        project = ProjectInfo(
            name="team-a", department=None, clusterId="local", namespace="ns", queue="q"
        )
        sub = _submission()
        assert cluster_of(sub, project) == "local"
        assert cluster_of(sub.model_copy(update={"clusterId": "edge"}), project) == "edge"


class TestWhatTheClusterCanRun:
    """Intake refuses at submission what the workload's cluster could not run, with the same
    check its agent makes before applying anything."""

    def _mpi(self) -> WorkloadSubmission:
        return TypeAdapter(WorkloadSubmission).validate_python(
            {
                "kind": "distributed",
                "name": "w",
                "projectId": "team-a",
                "spec": {"image": "i", "distributedFramework": "MPI", "numWorkers": 2},
            }
        )

    def test_an_unregistered_cluster_is_named(self) -> None:
        (issue,) = cluster_issues(self._mpi(), "edge", {"local": None})
        assert issue.field == "clusterId"

    def test_a_cluster_without_the_mpi_operator_refuses_an_mpijob(self) -> None:
        only_v1 = ClusterCapabilities(workloadApis={"MPIJob": "kubeflow.org/v1"})
        (issue,) = cluster_issues(self._mpi(), "local", {"local": only_v1})
        assert "MPIJob needs the mpi-operator" in issue.details
        assert "cluster local does not run" in issue.details

    def test_a_cluster_that_runs_it_raises_nothing(self) -> None:
        assert cluster_issues(self._mpi(), "local", {"local": ClusterCapabilities()}) == []


def _submission() -> WorkloadSubmission:
    return PolicyApprovedData.model_validate(
        {"workload": _ref("w", "local").model_dump(), "effectiveSpec": _spec()}
    ).effectiveSpec


def _spec() -> dict[str, Any]:
    return {"kind": "training", "name": "w", "projectId": "team-a", "spec": {"image": "i"}}


def _ref(workload_id: str, cluster: str) -> WorkloadRef:
    return WorkloadRef(
        workloadId=workload_id,
        name=workload_id,
        kind="training",
        project="team-a",
        clusterId=cluster,
        namespace="ns",
        queue="q",
        createdBy=ACTOR.email,
    )


def _incoming(event: Any) -> Incoming[Any]:
    return Incoming(event=event, span=INVALID_SPAN, msg=cast(Any, None))


class TestAgentsActOnlyOnTheirCluster:
    def test_approved_workloads_are_filtered_by_cluster(self) -> None:
        items = [
            _incoming(
                PolicyApprovedV1(
                    source="/t",
                    subject=wid,
                    actor=ACTOR,
                    data=PolicyApprovedData.model_validate(
                        {"workload": _ref(wid, cluster).model_dump(), "effectiveSpec": _spec()}
                    ),
                )
            )
            for wid, cluster in (("a", "local"), ("b", "edge"), ("c", "local"))
        ]
        local = mine(items, "local", lambda e: e.data.workload.clusterId)
        edge = mine(items, "edge", lambda e: e.data.workload.clusterId)
        assert [i.event.subject for i in local] == ["a", "c"]
        assert [i.event.subject for i in edge] == ["b"]
        assert mine(items, "elsewhere", lambda e: e.data.workload.clusterId) == []

    def test_desired_config_is_filtered_by_cluster(self) -> None:
        items = [
            _incoming(
                ClusterConfigDesiredV1(
                    source="/t",
                    subject=cluster,
                    actor=ACTOR,
                    data=ClusterConfigRequestedData(
                        clusterId=cluster,
                        settings=ClusterSettings(workloadOwnershipProtection=True),
                    ),
                )
            )
            for cluster in ("edge", "local")
        ]
        assert [i.event.subject for i in mine(items, "edge", lambda e: e.data.clusterId)] == [
            "edge"
        ]

    def test_each_cluster_has_durables_of_its_own(self) -> None:
        local, edge = Durables.of("local"), Durables.of("edge")
        assert local.approved == "scheduler-adapter-approved-local"
        assert {local.approved, local.actions, local.config}.isdisjoint(
            {edge.approved, edge.actions, edge.config}
        )


def _report(config: dict[str, Any], *, at: datetime, gpus: int = 16) -> ClusterConfigReportedV1:
    return ClusterConfigReportedV1(
        source="/t",
        subject="edge",
        actor=ACTOR,
        time=at,
        data=ClusterConfigReportedData(
            clusterId="edge",
            backend="simulated",
            config=ClusterConfig.model_validate(config),
            nodePools=["a100"],
            gpus=gpus,
        ),
    )


class TestLevelTriggeredConfig:
    def test_drift_is_what_the_report_lacks(self) -> None:
        desired = {"workloadOwnershipProtection": True}
        assert drift(desired, {"workloadOwnershipProtection": False, "knative": True}) == desired
        assert drift(desired, {"workloadOwnershipProtection": True}) == {}
        assert drift(desired, {}) == desired
        assert drift({}, {"workloadOwnershipProtection": False}) == {}

    def test_a_report_becomes_the_registry_record(self) -> None:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        record = record_of(_report({"workloadOwnershipProtection": True}, at=at))
        assert record.clusterId == "edge"
        assert record.backend == "simulated"
        assert record.nodePools == ["a100"] and record.gpus == 16
        assert record.config.workloadOwnershipProtection is True
        assert record.capabilities == {} and record.extra == {}
        assert record.reportedAt == at

    def test_a_heartbeat_that_changes_nothing_is_no_news(self) -> None:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        first = record_of(_report({"knative": False}, at=at))
        again = record_of(_report({"knative": False}, at=at + timedelta(seconds=10)))
        assert same_state(first, again)
        assert not same_state(None, first)
        assert not same_state(first, record_of(_report({"knative": True}, at=at)))
        assert not same_state(first, record_of(_report({"knative": False}, at=at, gpus=8)))


class TestProtectionInForce:
    def test_the_stricter_of_reported_and_desired(self) -> None:
        assert protection_in_force(reported=True, desired=None)
        assert protection_in_force(reported=None, desired=True)
        # An agent that restarted reports it off until it is sent down again: still protected.
        assert protection_in_force(reported=False, desired=True)
        # Switched off: in force until the agent reports it off.
        assert protection_in_force(reported=True, desired=False)
        assert not protection_in_force(reported=False, desired=False)
        assert not protection_in_force(reported=None, desired=None)
