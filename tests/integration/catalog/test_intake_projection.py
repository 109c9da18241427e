"""The catalog and intake services running on real NATS and PostgreSQL: assets made by
request-reply, submissions resolved from them, rejections named, no secret value on the bus,
and intake still resolving from its projection while the catalog is down."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nats.aio.msg import Msg
from pydantic import TypeAdapter
from sqlalchemy import select

from berth.catalog.bootstrap import build as build_catalog
from berth.catalog.config import CatalogSettings
from berth.contracts.catalog import (
    AssetDeleteRequest,
    AssetListReply,
    AssetListRequest,
    AssetPutRequest,
    AssetRef,
    AssetReply,
    AssetRequestedData,
    CatalogAssetRequestedV1,
    CatalogKeyReply,
    CatalogKeyRequest,
)
from berth.contracts.envelope import Actor
from berth.contracts.events import (
    SubmissionRequestedData,
    SubmissionRequestedV1,
    WorkloadPhaseChangedData,
    WorkloadPhaseChangedV1,
    WorkloadRef,
)
from berth.contracts.subjects import (
    RPC_CATALOG_ASSETS_DELETE,
    RPC_CATALOG_ASSETS_GET,
    RPC_CATALOG_ASSETS_LIST,
    RPC_CATALOG_ASSETS_PUT,
    RPC_CATALOG_KEYS_GET,
)
from berth.contracts.workload import WorkloadSubmission
from berth.intake.bootstrap import build as build_intake
from berth.intake.config import IntakeSettings
from berth.intake.tables import catalog_entries, workloads
from berth.shared.keys import seal
from berth.shared.service import Service
from tests.identity import ask, publish
from tests.integration.access import grant, rule
from tests.integration.cluster_registry import register
from tests.integration.shared.helpers import eventually

SUBMISSION: TypeAdapter[WorkloadSubmission] = TypeAdapter(WorkloadSubmission)
ADMIN = Actor(email="admin@example.com")
SECRET = "hf_do-not-leak-" + uuid.uuid4().hex


@contextlib.asynccontextmanager
async def running(service: Service) -> AsyncIterator[Service]:
    await service.app.start()
    try:
        yield service
    finally:
        await service.app.stop()


def catalog(nats_url: str, database_url: str, keys_dir: Path) -> Service:
    return build_catalog(
        CatalogSettings(
            nats_url=nats_url, database_url=database_url, local_traces=True, keys_dir=keys_dir
        )
    )


async def sealed(nc: Any, values: dict[str, str]) -> dict[str, str]:
    """The put request's fields for values sealed to the catalog's key, as a client makes them."""
    reply = await ask(nc, RPC_CATALOG_KEYS_GET, CatalogKeyRequest(), CatalogKeyReply, timeout=10)
    return {
        "sealedValues": seal(reply.key.publicKey, json.dumps(values).encode()),
        "keyId": reply.key.keyId,
    }


async def put(nc: Any, kind: str, name: str, spec: dict[str, Any], **more: Any) -> AssetReply:
    request = AssetPutRequest(actor=ADMIN, kind=kind, name=name, spec=spec, **more)
    reply: AssetReply = await ask(nc, RPC_CATALOG_ASSETS_PUT, request, AssetReply, timeout=10)
    return reply


async def created(nc: Any, kind: str, name: str, spec: dict[str, Any], **more: Any) -> None:
    reply = await put(nc, kind, name, spec, **more)
    assert reply.error is None, reply.error


class Outcomes:
    """Every received or rejected event, by workload id (core NATS sees JetStream publishes)."""

    def __init__(self) -> None:
        self.by_id: dict[str, tuple[str, dict[str, Any]]] = {}

    async def on_msg(self, msg: Msg) -> None:
        prefix, _, wid = msg.subject.rpartition(".")
        self.by_id[wid] = (prefix, json.loads(msg.data)["data"])

    async def submit(self, nc: Any, submission: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        wid = uuid.uuid4().hex
        event = SubmissionRequestedV1(
            source="/berth/tests",
            subject=wid,
            actor=Actor(email="researcher@example.com"),
            data=SubmissionRequestedData.model_validate({"submission": submission}),
        )
        await publish(nc.jetstream(), event)
        return await eventually(lambda: self.by_id.get(wid), timeout=20)


@dataclass
class World:
    """Intake and the catalog running, with a department, a project, an environment, a compute
    resource, a usable and an unusable data source, a sealed credential and a template."""

    nc: Any
    intake: Service
    outcomes: Outcomes
    seen: list[Msg]
    catalog_running: contextlib.AsyncExitStack
    restart_catalog: Callable[[], contextlib.AbstractAsyncContextManager[Service]]

    async def submit(self, name: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        return await self.outcomes.submit(
            self.nc,
            {"kind": "workspace", "projectId": "assets-proj", "spec": {}, "name": name, **fields},
        )

    async def from_template(self) -> dict[str, Any]:
        """A workspace from the template, two GPUs instead of the compute resource's one."""
        kind, data = await self.submit(
            "from-template", template="assets-notebook", spec={"compute": {"gpuDevicesRequest": 2}}
        )
        assert kind == "submission.received.v1", data
        return data

    async def delete(self, kind: str, name: str) -> AssetReply:
        reply: AssetReply = await ask(
            self.nc,
            RPC_CATALOG_ASSETS_DELETE,
            AssetDeleteRequest(actor=ADMIN, ref=AssetRef(kind=kind, name=name)),
            AssetReply,
            timeout=10,
        )
        return reply

    async def get(self, kind: str, name: str) -> AssetReply:
        reply: AssetReply = await ask(
            self.nc, RPC_CATALOG_ASSETS_GET, AssetRef(kind=kind, name=name), AssetReply, timeout=10
        )
        return reply

    async def projected(self, *names: str) -> bool:
        """Whether intake's copy of the catalog holds every one of ``names``."""
        async with self.intake.engine.connect() as conn:
            found = set((await conn.execute(select(catalog_entries.c.name))).scalars())
        return set(names) <= found


async def _create_assets(nc: Any) -> None:
    await created(nc, "department", "assets-dept", {})
    await created(
        nc,
        "project",
        "assets-proj",
        {"department": "assets-dept", "quota": [{"nodePool": "default", "gpu": {"deserved": 1}}]},
    )
    await created(
        nc,
        "environment",
        "assets-jupyter",
        {"image": "jupyter/base-notebook", "workloadSupportedTypes": ["workspace"]},
        scope="department",
        scopeName="assets-dept",
    )
    await created(nc, "compute", "assets-gpu", {"gpuDevicesRequest": 1, "cpuCoreRequest": 2})
    await created(
        nc,
        "datasource",
        "assets-data",
        {"type": "pvc", "volume": {"existingPvc": True, "claimName": "d", "path": "/data"}},
        status="No issues found",
    )
    await created(
        nc,
        "datasource",
        "assets-broken",
        {"type": "nfs", "volume": {"server": "nfs", "path": "/e", "mountPath": "/nfs"}},
        status="Issues found",
        statusReason="ReplicationError: export not reachable",
    )
    await created(
        nc,
        "credential",
        "assets-hf",
        {"type": "huggingface-token"},
        **await sealed(nc, {"HF_TOKEN": SECRET}),
    )
    await created(
        nc,
        "template",
        "assets-notebook",
        {
            "environment": "assets-jupyter",
            "compute": "assets-gpu",
            "dataSources": ["assets-data"],
            "spec": {"labels": [{"name": "team", "value": "ml"}]},
        },
        scope="project",
        scopeName="assets-proj",
    )


@pytest.fixture
async def world(nats_url: str, database_url: str, nc: Any, tmp_path: Path) -> AsyncIterator[World]:
    seen: list[Msg] = []

    async def scan(msg: Msg) -> None:
        seen.append(msg)

    everything = await nc.subscribe(">", cb=scan)
    outcomes = Outcomes()
    await nc.subscribe("submission.received.v1.*", cb=outcomes.on_msg)
    await nc.subscribe("submission.rejected.v1.*", cb=outcomes.on_msg)
    intake = build_intake(
        IntakeSettings(nats_url=nats_url, database_url=database_url, catalog_timeout_seconds=2)
    )
    async with running(intake), contextlib.AsyncExitStack() as catalog_running:
        # The administrator's rule, in intake's copy before anything is submitted (the
        # catalog's announcement of it may come later than the first submission).
        await grant(
            intake,
            rule(ADMIN.email, "System administrator"),
            rule("researcher@example.com", "L1 researcher"),
        )
        await register(nc, "local")
        await catalog_running.enter_async_context(
            running(catalog(nats_url, database_url, tmp_path))
        )
        await _create_assets(nc)
        yield World(
            nc=nc,
            intake=intake,
            outcomes=outcomes,
            seen=seen,
            catalog_running=catalog_running,
            restart_catalog=lambda: running(catalog(nats_url, database_url, tmp_path)),
        )
    await everything.unsubscribe()
    await _pull_requests_expired(nc, ("intake-", "catalog-"))


async def _pull_requests_expired(nc: Any, durables: tuple[str, ...]) -> None:
    """The server keeps a stopped service's last long-poll pull request until it expires, and
    hands it a message meanwhile, which then comes back only after ack_wait: the next test's
    services would stall on it. Wait until no such request is left."""
    js = nc.jetstream()

    async def none_waiting() -> bool:
        for stream in await js.streams_info():
            for consumer in await js.consumers_info(stream.config.name):
                if consumer.name.startswith(durables) and consumer.num_waiting:
                    return False
        return True

    await eventually(none_waiting, timeout=30, interval=0.2)


async def test_asset_names_are_unique_per_scope_and_kind(world: World) -> None:
    again = await put(world.nc, "compute", "assets-gpu", {"gpuDevicesRequest": 2})
    assert again.error == 'compute "assets-gpu" already exists in the tenant'


async def test_a_project_lists_the_assets_of_its_branch_only(world: World) -> None:
    listed: AssetListReply = await ask(
        world.nc,
        RPC_CATALOG_ASSETS_LIST,
        AssetListRequest(kind="environment", search="jupyter", project="assets-proj"),
        AssetListReply,
        timeout=10,
    )
    assert [a.name for a in listed.assets] == ["assets-jupyter"]
    hidden: AssetListReply = await ask(
        world.nc,
        RPC_CATALOG_ASSETS_LIST,
        AssetListRequest(kind="environment", project="team-a"),
        AssetListReply,
        timeout=10,
    )
    assert "assets-jupyter" not in [a.name for a in hidden.assets]


async def test_a_submission_is_resolved_from_its_template_and_its_assets(world: World) -> None:
    data = await world.from_template()
    sub = SUBMISSION.dump_python(
        SUBMISSION.validate_python(data["submission"]), mode="json", exclude_none=True
    )
    assert sub["spec"]["image"] == "jupyter/base-notebook"
    # The submission's own compute fields win over the compute resource's.
    assert sub["spec"]["compute"] == {"gpuDevicesRequest": 2, "cpuCoreRequest": 2.0}
    assert sub["spec"]["storage"]["pvc"][0]["claimName"] == "d"
    assert sub["spec"]["labels"] == [{"name": "team", "value": "ml"}]
    assert {(a["kind"], a["name"]) for a in data["assets"]} == {
        ("template", "assets-notebook"),
        ("environment", "assets-jupyter"),
        ("compute", "assets-gpu"),
        ("datasource", "assets-data"),
    }


async def test_a_workload_over_its_project_quota_says_why(world: World) -> None:
    data = await world.from_template()
    # Two GPUs against a deserved quota of one: over quota, and the reference says so.
    assert data["workload"]["overQuota"] is True
    assert data["workload"]["quotaReason"] == (
        "requests 2 GPU while project assets-proj uses 0 of its deserved 1"
    )


async def test_an_unusable_data_source_is_rejected_by_name(world: World) -> None:
    kind, data = await world.submit(
        "broken", template="assets-notebook", dataSources=["assets-broken"]
    )
    assert kind == "submission.rejected.v1"
    assert data["issues"] == [
        {
            "field": "dataSources.1",
            "details": 'data source "assets-broken" cannot be used: its status is '
            '"Issues found": ReplicationError: export not reachable',
        }
    ]


async def test_an_asset_in_use_is_not_deleted_and_the_answer_names_its_users(
    world: World,
) -> None:
    await world.from_template()

    # Used by the template at once, by the workload once the catalog has seen the submission.
    async def refused() -> AssetReply | None:
        reply = await world.delete("compute", "assets-gpu")
        return reply if "workload assets-proj/from-template" in reply.usedBy else None

    denied = await eventually(refused, timeout=10)
    assert denied.usedBy == ["template assets-notebook", "workload assets-proj/from-template"]
    assert denied.error and "is in use by template assets-notebook" in denied.error
    assert (await world.get("compute", "assets-gpu")).asset is not None


async def test_assets_change_by_events_and_a_refusal_names_the_users(world: World) -> None:
    """As a UI would: a change, and a refusal naming who uses the asset."""
    answers: dict[str, tuple[str, dict[str, Any]]] = {}

    async def on_answer(msg: Msg) -> None:
        body = json.loads(msg.data)
        answers[body["causationid"]] = (msg.subject.split(".")[1], body["data"])

    await world.nc.subscribe("catalog.asset-changed.v1.*", cb=on_answer)
    await world.nc.subscribe("catalog.asset-rejected.v1.*", cb=on_answer)
    requests = [
        AssetRequestedData(
            operation="create", kind="compute", name="assets-evt", spec={"cpuCoreRequest": 1}
        ),
        AssetRequestedData(operation="delete", kind="datasource", name="assets-data"),
    ]
    ids = []
    for data in requests:
        event = CatalogAssetRequestedV1(
            source="/berth/tests", subject=uuid.uuid4().hex, actor=ADMIN, data=data
        )
        ids.append(str(event.id))
        await publish(world.nc.jetstream(), event)
    made, kept = [await eventually(lambda i=i: answers.get(i), timeout=10) for i in ids]
    assert made[0] == "asset-changed" and made[1]["name"] == "assets-evt"
    assert kept == (
        "asset-rejected",
        {
            "kind": "datasource",
            "name": "assets-data",
            "reason": 'datasource "assets-data" is in use by template assets-notebook',
            "usedBy": ["template assets-notebook"],
        },
    )


async def test_a_deleted_workload_no_longer_holds_its_assets(world: World) -> None:
    first = await world.from_template()

    async def held() -> AssetReply | None:
        reply = await world.get("compute", "assets-gpu")
        return reply if "workload assets-proj/from-template" in reply.usedBy else None

    await eventually(held, timeout=10)
    gone = WorkloadPhaseChangedV1(
        source="/berth/scheduler-adapter",
        subject=first["workload"]["workloadId"],
        actor=ADMIN,
        data=WorkloadPhaseChangedData(
            workload=WorkloadRef.model_validate(first["workload"]), phase="Deleted"
        ),
    )
    await publish(world.nc.jetstream(), gone)

    async def released() -> AssetReply | None:
        reply = await world.get("compute", "assets-gpu")
        return reply if reply.usedBy == ["template assets-notebook"] else None

    await eventually(released, timeout=10)


async def test_intake_resolves_from_its_copy_while_the_catalog_is_down(world: World) -> None:
    await eventually(
        lambda: world.projected("assets-proj", "assets-notebook", "assets-data"), timeout=10
    )
    await world.catalog_running.aclose()

    kind, data = await world.submit("while-down", template="assets-notebook")
    assert kind == "submission.received.v1", data
    assert data["submission"]["spec"]["image"] == "jupyter/base-notebook"
    assert data["workload"]["namespace"] == "berth-assets-proj"


async def test_what_changes_after_the_catalog_returns_reaches_intake(world: World) -> None:
    await eventually(lambda: world.projected("assets-notebook"), timeout=10)
    await world.catalog_running.aclose()
    async with world.restart_catalog():
        await created(world.nc, "compute", "assets-late", {"cpuCoreRequest": 1})
        await eventually(lambda: world.projected("assets-late"), timeout=10)


async def test_a_sealed_credential_value_never_crosses_the_bus(world: World) -> None:
    """The value came sealed: nothing on the bus (requests, events, answers, spans) shows it."""
    await world.from_template()
    credential = await world.get("credential", "assets-hf")
    assert credential.asset is not None
    await asyncio.sleep(0.3)  # let the last spans reach the bus

    assert len(world.seen) > 20
    assert not [m.subject for m in world.seen if SECRET.encode() in m.data]
    assert not any(
        SECRET.encode() in b"".join(f"{k}{v}".encode() for k, v in (m.headers or {}).items())
        for m in world.seen
    )


async def test_the_catalog_names_what_is_wrong(
    nats_url: str, database_url: str, nc: Any, tmp_path: Path
) -> None:
    async with running(catalog(nats_url, database_url, tmp_path)):
        await created(nc, "credential", "keys", {"type": "access-key"})
        wrong = await put(
            nc,
            "datasource",
            "repo",
            {
                "type": "git",
                "volume": {"repository": "https://git.local/r.git", "path": "/c"},
                "credential": "keys",
            },
        )
        assert wrong.error == (
            'credential "keys" is not of type password, which a git data source needs'
        )
        nowhere = await put(
            nc, "compute", "c", {}, scope="department", scopeName="no-such-department"
        )
        assert nowhere.error == 'department "no-such-department" does not exist'
        dangling = await put(nc, "template", "t", {"environment": "missing"})
        assert dangling.error == 'environment "missing" does not exist'
        bad = await put(nc, "compute", "c", {"gpuDevicesRequest": -1})
        assert bad.error and bad.error.startswith("compute c: gpuDevicesRequest")
        leaked = await put(
            nc,
            "credential",
            "hf",
            {"type": "huggingface-token"},
            **await sealed(nc, {"TOKEN": SECRET}),
        )
        assert leaked.error == "unknown credential keys TOKEN; expected HF_TOKEN"
        clear = await put(
            nc, "credential", "hf", {"type": "huggingface-token"}, secretValues={"HF_TOKEN": "x"}
        )
        assert clear.error is not None
        assert clear.error.startswith("secretValues: credential values in clear are refused")
        renamed = await put(
            nc, "credential", "hf", {"type": "huggingface-token", "secretName": "mine"}
        )
        assert renamed.error == (
            "secretName: the Secret of credential hf is always berth-cred-hf "
            "(the name workloads refer to); leave secretName unset"
        )
        # The same name in another scope is another asset.
        await created(nc, "compute", "c", {"cpuCoreRequest": 1})
        await created(
            nc, "compute", "c", {"cpuCoreRequest": 2}, scope="project", scopeName="team-a"
        )
        ambiguous: AssetReply = await ask(
            nc,
            RPC_CATALOG_ASSETS_DELETE,
            AssetDeleteRequest(actor=ADMIN, ref=AssetRef(kind="compute", name="c")),
            AssetReply,
            timeout=10,
        )
        assert ambiguous.error == (
            'compute "c" exists in several scopes (project team-a, tenant): give one'
        )


async def test_a_dry_run_submission_event_creates_nothing(
    nats_url: str, database_url: str, nc: Any, tmp_path: Path
) -> None:
    outcomes = Outcomes()
    await nc.subscribe("submission.received.v1.*", cb=outcomes.on_msg)
    await nc.subscribe("submission.rejected.v1.*", cb=outcomes.on_msg)
    intake = build_intake(IntakeSettings(nats_url=nats_url, database_url=database_url))
    async with running(intake), running(catalog(nats_url, database_url, tmp_path)):
        await register(nc, "local")
        await created(nc, "project", "dry-proj", {})
        submission = {
            "kind": "training",
            "name": "dry",
            "projectId": "dry-proj",
            "spec": {"image": "pytorch/pytorch"},
        }

        async def submit(dry_run: bool) -> tuple[str, str, dict[str, Any]]:
            wid = uuid.uuid4().hex
            event = SubmissionRequestedV1(
                source="/berth/tests",
                subject=wid,
                actor=ADMIN,
                data=SubmissionRequestedData.model_validate(
                    {"submission": submission, "dryRun": dry_run}
                ),
            )
            await publish(nc.jetstream(), event)
            kind, data = await eventually(lambda: outcomes.by_id.get(wid), timeout=20)
            return wid, kind, data

        wid, kind, data = await submit(dry_run=True)
        assert kind == "submission.rejected.v1"
        assert data["dryRun"] is True
        assert [i["field"] for i in data["issues"]] == ["dryRun"]
        async with intake.engine.connect() as conn:
            assert await conn.scalar(select(workloads.c.id).where(workloads.c.id == wid)) is None

        # Nothing was held: the same submission for real is received under its name.
        _, kind, data = await submit(dry_run=False)
        assert kind == "submission.received.v1", data
        assert data["workload"]["name"] == "dry"
