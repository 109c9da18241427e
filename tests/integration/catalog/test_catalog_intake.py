"""The catalog and intake services running on real NATS and PostgreSQL: assets made by
request-reply, submissions resolved from them, rejections named, no secret value on the bus,
and intake still resolving from its projection while the catalog is down."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

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
from berth.shared.bus import ask, publish
from berth.shared.keys import seal
from berth.shared.service import Service
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


async def test_assets_catalog_and_intake(
    nats_url: str, database_url: str, nc: Any, tmp_path: Path
) -> None:
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
    cat = catalog(nats_url, database_url, tmp_path)
    async with running(intake), contextlib.AsyncExitStack() as stack:
        await register(nc, "local")
        await stack.enter_async_context(running(cat))
        await created(nc, "department", "assets-dept", {})
        await created(
            nc,
            "project",
            "assets-proj",
            {
                "department": "assets-dept",
                "quota": [{"nodePool": "default", "gpu": {"deserved": 1}}],
            },
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

        # Names are unique per scope and kind; the answer says so.
        again = await put(nc, "compute", "assets-gpu", {"gpuDevicesRequest": 2})
        assert again.error == 'compute "assets-gpu" already exists in the tenant'

        listed: AssetListReply = await ask(
            nc,
            RPC_CATALOG_ASSETS_LIST,
            AssetListRequest(kind="environment", search="jupyter", project="assets-proj"),
            AssetListReply,
            timeout=10,
        )
        assert [a.name for a in listed.assets] == ["assets-jupyter"]
        hidden: AssetListReply = await ask(
            nc,
            RPC_CATALOG_ASSETS_LIST,
            AssetListRequest(kind="environment", project="team-a"),
            AssetListReply,
            timeout=10,
        )
        assert "assets-jupyter" not in [a.name for a in hidden.assets]

        base = {"kind": "workspace", "projectId": "assets-proj", "spec": {}}
        kind, data = await outcomes.submit(
            nc,
            {
                **base,
                "name": "from-template",
                "template": "assets-notebook",
                "spec": {"compute": {"gpuDevicesRequest": 2}},
            },
        )
        assert kind == "submission.received.v1", data
        first = data
        sub = SUBMISSION.dump_python(
            SUBMISSION.validate_python(data["submission"]), mode="json", exclude_none=True
        )
        assert sub["spec"]["image"] == "jupyter/base-notebook"
        assert sub["spec"]["compute"] == {"gpuDevicesRequest": 2, "cpuCoreRequest": 2.0}
        assert sub["spec"]["storage"]["pvc"][0]["claimName"] == "d"
        assert sub["spec"]["labels"] == [{"name": "team", "value": "ml"}]
        # Two GPUs against a deserved quota of one: over quota, and the reference says so.
        assert data["workload"]["overQuota"] is True
        assert data["workload"]["quotaReason"] == (
            "requests 2 GPU while project assets-proj uses 0 of its deserved 1"
        )
        assert {(a["kind"], a["name"]) for a in data["assets"]} == {
            ("template", "assets-notebook"),
            ("environment", "assets-jupyter"),
            ("compute", "assets-gpu"),
            ("datasource", "assets-data"),
        }

        kind, data = await outcomes.submit(
            nc,
            {
                **base,
                "name": "broken",
                "template": "assets-notebook",
                "dataSources": ["assets-broken"],
            },
        )
        assert kind == "submission.rejected.v1"
        assert data["issues"] == [
            {
                "field": "dataSources.1",
                "details": 'data source "assets-broken" cannot be used: its status is '
                '"Issues found": ReplicationError: export not reachable',
            }
        ]

        # In use by a template (and, once the catalog has seen the submission, a workload).
        async def refused() -> AssetReply | None:
            reply: AssetReply = await ask(
                nc,
                RPC_CATALOG_ASSETS_DELETE,
                AssetDeleteRequest(actor=ADMIN, ref=AssetRef(kind="compute", name="assets-gpu")),
                AssetReply,
                timeout=10,
            )
            return reply if "workload assets-proj/from-template" in reply.usedBy else None

        denied = await eventually(refused, timeout=10)
        assert denied.usedBy == ["template assets-notebook", "workload assets-proj/from-template"]
        assert denied.error and "is in use by template assets-notebook" in denied.error

        # The same by events, as a UI would: a change, and a refusal naming who uses the asset.
        answers: dict[str, tuple[str, dict[str, Any]]] = {}

        async def on_answer(msg: Msg) -> None:
            body = json.loads(msg.data)
            answers[body["causationid"]] = (msg.subject.split(".")[1], body["data"])

        await nc.subscribe("catalog.asset-changed.v1.*", cb=on_answer)
        await nc.subscribe("catalog.asset-rejected.v1.*", cb=on_answer)
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
            await publish(nc.jetstream(), event)
        made, kept = [await eventually(lambda i=i: answers.get(i), timeout=10) for i in ids]
        assert made[0] == "asset-changed" and made[1]["name"] == "assets-evt"
        assert kept == (
            "asset-rejected",
            {
                "kind": "datasource",
                "name": "assets-data",
                "reason": 'datasource "assets-data" is in use by template assets-notebook, '
                "workload assets-proj/from-template",
                "usedBy": ["template assets-notebook", "workload assets-proj/from-template"],
            },
        )

        # A deleted workload no longer holds its assets.
        gone = WorkloadPhaseChangedV1(
            source="/berth/scheduler-adapter",
            subject=first["workload"]["workloadId"],
            actor=ADMIN,
            data=WorkloadPhaseChangedData(
                workload=WorkloadRef.model_validate(first["workload"]), phase="Deleted"
            ),
        )
        await publish(nc.jetstream(), gone)

        async def released() -> AssetReply | None:
            reply: AssetReply = await ask(
                nc,
                RPC_CATALOG_ASSETS_GET,
                AssetRef(kind="compute", name="assets-gpu"),
                AssetReply,
                timeout=10,
            )
            return reply if reply.usedBy == ["template assets-notebook"] else None

        await eventually(released, timeout=10)

        # The projection has everything before the catalog goes away.
        async def projected() -> bool:
            async with intake.engine.connect() as conn:
                names = set((await conn.execute(select(catalog_entries.c.name))).scalars())
            return {"assets-proj", "assets-notebook", "assets-data"} <= names

        await eventually(projected, timeout=10)
        await stack.aclose()  # the catalog stops

        kind, data = await outcomes.submit(
            nc, {**base, "name": "while-down", "template": "assets-notebook"}
        )
        assert kind == "submission.received.v1", data
        assert data["submission"]["spec"]["image"] == "jupyter/base-notebook"
        assert data["workload"]["namespace"] == "berth-assets-proj"

        # Back again: what changes now reaches the projection too.
        async with running(catalog(nats_url, database_url, tmp_path)):
            await created(nc, "compute", "assets-late", {"cpuCoreRequest": 1})

            async def caught_up() -> bool:
                async with intake.engine.connect() as conn:
                    found = await conn.scalar(
                        select(catalog_entries.c.id).where(catalog_entries.c.name == "assets-late")
                    )
                return found is not None

            await eventually(caught_up, timeout=10)
    await asyncio.sleep(0.3)  # let the last spans reach the bus
    await everything.unsubscribe()

    # The value came sealed: nothing on the bus (requests, events, answers, spans) shows it.
    assert len(seen) > 50
    assert not [m.subject for m in seen if SECRET.encode() in m.data]
    assert not any(
        SECRET.encode() in b"".join(f"{k}{v}".encode() for k, v in (m.headers or {}).items())
        for m in seen
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
