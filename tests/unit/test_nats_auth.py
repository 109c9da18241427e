"""The NATS permissions generated from the contracts, and the services checked against them:
a service that consumes, emits or answers something its role does not allow fails here."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from berth.cli import nats_auth
from berth.cli.nats_auth import allows, matches, permission_table, role_permissions
from berth.contracts.envelope import Event
from berth.contracts.registry import ALL_EVENTS
from berth.contracts.roles import (
    ADMIN,
    ROLES,
    SERVICES,
    UI,
    inbox_prefix,
    role_of_source,
    source_of,
)
from berth.contracts.rpc import RPCS
from berth.contracts.subjects import TELEMETRY_SPANS, deadletter, stream_for
from berth.shared.service import Service

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "intake": ("berth.intake", "IntakeSettings"),
    "policy": ("berth.policy", "PolicySettings"),
    "catalog": ("berth.catalog", "CatalogSettings"),
    "cluster-sync": ("berth.cluster_sync", "ClusterSyncSettings"),
    "ownership": ("berth.ownership", "OwnershipSettings"),
    "scheduler-adapter": ("berth.scheduler_adapter", "SchedulerAdapterSettings"),
}


def build(role: str) -> Service:
    """The service as its process builds it; nothing connects (a dummy engine, no start)."""
    package, settings_class = PACKAGES[role]
    bootstrap = importlib.import_module(f"{package}.bootstrap")
    config = importlib.import_module(f"{package}.config")
    settings = getattr(config, settings_class)(nats_url="nats://127.0.0.1:1")
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    service: Service = bootstrap.build(settings, engine=engine)
    return service


def declared_type(prefix: str) -> type[Event]:
    return next(e for e in ALL_EVENTS if e.subject_prefix() == prefix)


# --- the declarations ------------------------------------------------------------------------


def test_every_event_type_declares_known_producers_and_consumers() -> None:
    for event in ALL_EVENTS:
        assert event.PRODUCERS, f"{event.__name__} declares no PRODUCERS"
        assert set(event.PRODUCERS) <= set(ROLES), event.__name__
        for consumer in event.CONSUMERS:
            assert set(consumer.roles) <= set(ROLES), event.__name__


def test_durable_names_are_unique_across_event_types() -> None:
    durables = [c.durable for e in ALL_EVENTS for c in e.CONSUMERS if c.durable]
    assert len(durables) == len(set(durables))


def test_sources_name_roles() -> None:
    assert role_of_source(source_of("policy")) == "policy"
    assert role_of_source("/berth/cli") is None
    assert role_of_source("policy") is None


def test_a_source_check_accepts_producers_and_skips_ui_requests() -> None:
    approved = declared_type("policy.approved.v1")
    assert approved.source_problem("/berth/policy") is None
    problem = approved.source_problem("/berth/intake")
    assert problem is not None and "policy" in problem
    assert declared_type("submission.requested.v1").source_problem("/anything") is None


# --- the generated permissions ---------------------------------------------------------------


def test_subject_patterns_match_as_nats_does() -> None:
    assert matches("a.*.c", "a.b.c")
    assert not matches("a.*", "a.b.c")
    assert matches("a.>", "a.b.c")
    assert not matches("a.>", "a")
    assert matches(">", "x")
    assert not matches("a.b", "a.b.c")


@pytest.mark.parametrize("role", SERVICES)
def test_each_service_may_do_exactly_what_its_process_does(role: str) -> None:
    service = build(role)
    perms = role_permissions(role)
    assert service.subscriptions, role
    for sub in service.subscriptions:
        event = declared_type(sub.prefix)
        # The durable name comes from the contracts, not from a copy.
        assert sub.durable in {
            c.durable_for("local") for c in event.CONSUMERS if role in c.roles and c.durable
        }, f"{role}: {sub.durable} is not declared on {event.__name__}"
        consumer = f"{stream_for(sub.prefix)}.{sub.durable}"
        for subject in (
            f"$JS.API.CONSUMER.INFO.{consumer}",
            f"$JS.API.CONSUMER.CREATE.{consumer}.{sub.prefix}.*",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{consumer}",
            f"$JS.API.CONSUMER.MSG.NEXT.{consumer}",
            f"$JS.ACK.{consumer}.1.2.3.4.5",
        ):
            assert allows(perms.publish, subject), f"{role} may not {subject}"
    for event in service.published:
        assert role in event.PRODUCERS, f"{role} emits {event.__name__}, not declared"
        assert allows(perms.publish, event.nats_subject("some-id")), (role, event)
    for subject in service.responds_to:
        assert allows(perms.subscribe, subject), f"{role} may not answer {subject}"
        assert perms.allow_responses
    for stream in service.streams():
        assert allows(perms.publish, f"$JS.API.STREAM.INFO.{stream}"), (role, stream)
    assert allows(perms.publish, f"{deadletter(role)}.submission_requested_v1_x")
    assert allows(perms.publish, f"{TELEMETRY_SPANS}.0123abcd")
    assert allows(perms.subscribe, f"{inbox_prefix(role)}.abc.def")


@pytest.mark.parametrize("role", SERVICES)
def test_a_service_publishes_only_its_own_events_and_answers_only_its_own_queries(
    role: str,
) -> None:
    perms = role_permissions(role)
    for event in ALL_EVENTS:
        if role not in event.PRODUCERS:
            assert not allows(perms.publish, event.nats_subject("x")), (role, event.__name__)
    for rpc in RPCS:
        if rpc.server != role:
            assert not allows(perms.subscribe, rpc.subject), (role, rpc.subject)
        if role not in rpc.callers:
            assert not allows(perms.publish, rpc.subject), (role, rpc.subject)
    for other in ROLES:
        if other != role:
            assert not allows(perms.subscribe, f"{inbox_prefix(other)}.x"), (role, other)
    # No stream management, and no other service's consumers or dead letters.
    assert not allows(perms.publish, "$JS.API.STREAM.CREATE.WORKLOAD")
    assert not allows(perms.publish, "$JS.API.STREAM.UPDATE.WORKLOAD")
    assert not allows(perms.publish, "$JS.API.STREAM.DELETE.WORKLOAD")
    assert not allows(perms.publish, "$JS.API.CONSUMER.CREATE.WORKLOAD")
    assert not allows(perms.publish, "$JS.API.CONSUMER.MSG.NEXT.POLICY.someone-else")
    assert not allows(perms.subscribe, ">")


def test_ui_publishes_only_requests_and_reads_what_uis_follow() -> None:
    perms = role_permissions(UI)
    published = {
        e.subject_prefix() for e in ALL_EVENTS if allows(perms.publish, e.nats_subject("x"))
    }
    assert published == {
        "submission.requested.v1",
        "workload.action-requested.v1",
        "catalog.asset-requested.v1",
        "policy.change-requested.v1",
        "cluster.config-requested.v1",
    }
    followed = {
        e.subject_prefix() for e in ALL_EVENTS if allows(perms.subscribe, e.nats_subject("x"))
    }
    # What `berth submit --wait` and `berth delete|suspend|resume` show, and the answers to
    # catalog and policy requests.
    assert {
        "submission.received.v1",
        "submission.rejected.v1",
        "policy.approved.v1",
        "policy.rejected.v1",
        "workload.scheduled.v1",
        "workload.phase-changed.v1",
        "workload.action-authorized.v1",
        "workload.action-denied.v1",
    } <= followed
    assert not followed & published
    assert not allows(perms.subscribe, ">")
    assert not allows(perms.subscribe, "rpc.catalog.projects.lookup.v1")
    assert not allows(perms.subscribe, f"{TELEMETRY_SPANS}.x")  # read through JetStream only
    assert not perms.allow_responses
    for rpc in RPCS:
        assert allows(perms.publish, rpc.subject) == (UI in rpc.callers), rpc.subject
    # No stream or consumer management at all: a push consumer would deliver a stream's
    # messages to any subject.
    assert not any(
        p.startswith(("$JS.API.STREAM.CREATE", "$JS.API.CONSUMER")) for p in perms.publish
    )
    assert allows(perms.publish, "$JS.API.STREAM.MSG.GET.TELEMETRY")


def test_only_admin_may_manage_streams() -> None:
    table = permission_table()
    managing = [r for r, p in table.items() if allows(p.publish, "$JS.API.STREAM.CREATE.CLUSTER")]
    assert managing == [ADMIN]


def test_the_agent_applies_its_cluster_config_and_reports() -> None:
    perms = role_permissions("agent", ["local", "gpu-east"])
    for cluster in ("local", "gpu-east"):
        durable = f"CLUSTER.scheduler-adapter-config-{cluster}"
        assert allows(perms.publish, f"$JS.API.CONSUMER.MSG.NEXT.{durable}")
    assert allows(perms.publish, "cluster.config-reported.v1.local")
    assert allows(perms.publish, "workload.phase-changed.v1.w1")
    assert not allows(perms.publish, "cluster.config-desired.v1.local")
    assert not allows(perms.publish, "policy.approved.v1.w1")
    assert not allows(perms.subscribe, "rpc.scheduler-adapter.render.v1")


def test_server_config_names_every_role_key() -> None:
    keys = {role: f"U{role.upper().replace('-', '')}KEY" for role in ROLES}
    text = nats_auth.server_config(keys)
    for key in keys.values():
        assert f'nkey: "{key}"' in text
    assert "jetstream: enabled" in text
    assert "no_auth_user" not in text


def test_readme_permission_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert nats_auth.markdown_table() in readme


def _seed_files(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in directory.glob("*.nk")}


def test_credentials_are_private_and_kept_across_runs(tmp_path: Path) -> None:
    directory = tmp_path / "nats"
    config = nats_auth.ensure_credentials(directory)
    assert directory.stat().st_mode & 0o777 == 0o700
    files: dict[str, Any] = _seed_files(directory)
    assert set(files) == {f"{role}.nk" for role in ROLES}
    for path in [*directory.glob("*.nk"), config]:
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert all(re.fullmatch(r"SU[A-Z2-7]+\n?", seed) for seed in files.values())
    nats_auth.ensure_credentials(directory)
    assert _seed_files(directory) == files
