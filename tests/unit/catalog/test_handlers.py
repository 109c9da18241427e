"""The catalog handlers as specifications: a fake unit of work and the in-memory store, no
server. The same handlers run in the service on PostgreSQL and NATS (tests/integration/catalog)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from berth.catalog import credentials, handlers
from berth.catalog.keys import LocalKeyProvider, sealing_keys
from berth.catalog.usage import no_workloads
from berth.contracts.catalog import (
    AssetDeleteRequest,
    AssetListRequest,
    AssetPutRequest,
    AssetRef,
    AssetReply,
    AssetRequestedData,
    AssetResolveRequest,
    CatalogAssetRejectedV1,
    CatalogAssetRequestedV1,
    CatalogKeyRequest,
    CredentialDeliveryRequest,
)
from berth.contracts.envelope import Actor
from berth.contracts.events import (
    CatalogAssetChangedV1,
    ClusterConfig,
    ClusterConfigChangedData,
    ClusterConfigChangedV1,
)
from berth.contracts.queries import ProjectLookupItem, ProjectLookupRequest
from berth.shared.errors import TransientError
from berth.shared.keys import KeyFiles, SealingKeys, seal
from berth.shared.testing import FakeUnitOfWork, incoming
from tests.unit.catalog.catalog_fakes import InMemoryCatalogStore, WorkloadsInUse

pytestmark = pytest.mark.unit

ADMIN = Actor(email="admin@example.com")
SECRET = "hf_do_not_leak_me"
TRACER_NAME = "berth.tests.catalog"

PYTORCH = {"image": "pytorch/pytorch"}


class Catalog:
    """The catalog's handlers over one in-memory store, with its keys in ``keys_dir``."""

    def __init__(self, keys_dir: Path) -> None:
        self.store = InMemoryCatalogStore()
        self.uow = FakeUnitOfWork(self.store)
        # Which workloads use which assets, as intake would answer.
        self.workloads = WorkloadsInUse()
        self.keys = credentials.Keys(
            lambda: LocalKeyProvider.from_dir(keys_dir), lambda: sealing_keys(keys_dir)
        )
        self.writer = handlers.Writer(
            begin=self.uow,
            cluster_id="local",
            keys=self.keys,
            workloads=self.workloads,
            store=self._of,
        )

    def _of(self, _unit: object) -> InMemoryCatalogStore:
        return self.store

    def reader(self) -> Any:
        return lambda: _Reading(self.store)

    async def put(self, kind: str, name: str, spec: dict[str, Any], **fields: Any) -> AssetReply:
        request = AssetPutRequest.model_validate(
            {"actor": ADMIN, "kind": kind, "name": name, "spec": spec, **fields}
        )
        return await handlers.put_asset(request, writer=self.writer)

    async def delete(self, kind: str, name: str, **fields: Any) -> AssetReply:
        ref = AssetRef.model_validate({"kind": kind, "name": name, **fields})
        return await handlers.delete_asset(
            AssetDeleteRequest(actor=ADMIN, ref=ref), writer=self.writer
        )

    async def get(self, kind: str, name: str) -> AssetReply:
        ref = AssetRef.model_validate({"kind": kind, "name": name})
        return await handlers.get_asset(ref, read=self.reader(), workloads=self.workloads)

    async def organisation(self) -> None:
        """A department ``research`` with project ``team-a``, and project ``lab`` outside it."""
        assert (await self.put("department", "research", {})).error is None
        assert (await self.put("project", "team-a", {"department": "research"})).error is None
        assert (await self.put("project", "lab", {})).error is None

    def changes(self) -> list[CatalogAssetChangedV1]:
        return self.uow.events_of(CatalogAssetChangedV1)


class _Reading:
    def __init__(self, store: InMemoryCatalogStore) -> None:
        self.store = store

    async def __aenter__(self) -> InMemoryCatalogStore:
        return self.store

    async def __aexit__(self, *_: object) -> None:
        return None


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path)


# --- create, update, delete ------------------------------------------------------------------


async def test_a_created_asset_is_announced_and_its_name_is_unique_per_kind_and_scope(
    catalog: Catalog,
) -> None:
    await catalog.organisation()
    created = await catalog.put("environment", "pytorch", PYTORCH)
    assert created.asset is not None and created.asset.createdBy == ADMIN.email
    (*_, event) = catalog.changes()
    assert (event.data.change, event.data.assetId, event.actor) == (
        "created",
        created.asset.id,
        ADMIN,
    )
    again = await catalog.put("environment", "pytorch", {"image": "other"})
    assert again.error == 'environment "pytorch" already exists in the tenant'
    # The same name in another scope, or of another kind, is another asset.
    in_project = await catalog.put(
        "environment", "pytorch", PYTORCH, scope="project", scopeName="team-a"
    )
    assert in_project.error is None
    assert (await catalog.put("compute", "pytorch", {"gpuDevicesRequest": 1})).error is None


async def test_an_update_changes_the_spec_of_an_existing_asset_only(catalog: Catalog) -> None:
    await catalog.put("environment", "pytorch", PYTORCH)
    updated = await catalog.put("environment", "pytorch", {"image": "new"}, update=True)
    assert updated.asset is not None and updated.asset.spec["image"] == "new"
    assert catalog.changes()[-1].data.change == "updated"
    missing = await catalog.put("environment", "absent", PYTORCH, update=True)
    assert missing.error == 'environment "absent" does not exist in the tenant'


async def test_an_invalid_spec_and_an_unknown_scope_are_refused_by_name(catalog: Catalog) -> None:
    bad = await catalog.put("environment", "broken", {"image": ""})
    assert bad.error is not None and bad.error.startswith("environment broken: ")
    nowhere = await catalog.put("environment", "e", PYTORCH, scope="project", scopeName="ghost")
    assert nowhere.error == 'project "ghost" does not exist'
    assert catalog.changes() == []


async def test_a_project_needs_its_department_and_a_free_namespace(catalog: Catalog) -> None:
    orphan = await catalog.put("project", "p", {"department": "ghost"})
    assert orphan.error == 'department "ghost" does not exist'
    await catalog.put("project", "p", {"namespace": "shared"})
    taken = await catalog.put("project", "q", {"namespace": "shared"})
    assert taken.error == 'namespace "shared" is taken by project "p"'


async def test_a_deleted_asset_is_announced_with_what_it_was(catalog: Catalog) -> None:
    created = await catalog.put("environment", "pytorch", PYTORCH)
    deleted = await catalog.delete("environment", "pytorch")
    assert deleted.asset == created.asset
    assert catalog.changes()[-1].data.change == "deleted"
    assert (await catalog.get("environment", "pytorch")).error == (
        'environment "pytorch" does not exist'
    )


async def test_an_asset_in_use_cannot_be_deleted_and_the_refusal_names_its_users(
    catalog: Catalog,
) -> None:
    await catalog.organisation()
    await catalog.put("environment", "pytorch", PYTORCH)
    await catalog.put("template", "train", {"environment": "pytorch"})
    refused = await catalog.delete("environment", "pytorch")
    assert refused.error == 'environment "pytorch" is in use by template train'
    assert refused.usedBy == ["template train"]
    department = await catalog.delete("department", "research")
    assert department.usedBy == ["project team-a"]
    assert (await catalog.get("environment", "pytorch")).usedBy == ["template train"]
    assert [e.data.change for e in catalog.changes()].count("deleted") == 0


async def test_an_asset_a_live_workload_uses_is_held_as_intake_says(catalog: Catalog) -> None:
    await catalog.put("environment", "pytorch", PYTORCH)
    env = (await catalog.put("environment", "cuda", PYTORCH)).asset
    assert env is not None
    catalog.workloads.users[env.id] = ["team-a/train-1"]
    refused = await catalog.delete("environment", "cuda")
    assert refused.error == 'environment "cuda" is in use by workload team-a/train-1'
    assert refused.usedBy == ["workload team-a/train-1"]
    assert (await catalog.get("environment", "cuda")).usedBy == ["workload team-a/train-1"]
    # Asked about that asset only, at the time of the delete.
    assert catalog.workloads.asked[0] == [env.id]
    # Once intake no longer counts the workload (deleted, rejected), the asset can go.
    catalog.workloads.users.clear()
    assert (await catalog.delete("environment", "cuda")).error is None
    assert (await catalog.delete("environment", "pytorch")).error is None


async def test_an_asset_is_not_deleted_while_intake_cannot_say_who_uses_it(
    catalog: Catalog,
) -> None:
    await catalog.put("environment", "pytorch", PYTORCH)
    catalog.workloads.failure = TransientError("no service answers rpc.intake.workloads")
    refused = await catalog.delete("environment", "pytorch")
    assert refused.error == (
        'cannot tell which workloads use environment "pytorch": '
        "no service answers rpc.intake.workloads"
    )
    assert [e.data.change for e in catalog.changes()].count("deleted") == 0
    catalog.workloads.failure = None
    assert (await catalog.delete("environment", "pytorch")).error is None


async def test_a_template_naming_assets_its_scope_cannot_see_is_refused(catalog: Catalog) -> None:
    await catalog.organisation()
    await catalog.put("environment", "private", PYTORCH, scope="project", scopeName="lab")
    refused = await catalog.put(
        "template", "t", {"environment": "private"}, scope="project", scopeName="team-a"
    )
    assert refused.error == (
        'environment "private" is not visible from project "team-a": it belongs to project lab'
    )
    missing = await catalog.put("template", "t", {"compute": "ghost"})
    assert missing.error == 'compute "ghost" does not exist'
    # Seen from the project that owns it, the same template is fine.
    seen = await catalog.put(
        "template", "t", {"environment": "private"}, scope="project", scopeName="lab"
    )
    assert seen.error is None


async def test_a_data_source_needs_a_credential_of_the_type_it_uses(catalog: Catalog) -> None:
    await catalog.put("credential", "hf", {"type": "huggingface-token"})
    git = {"type": "git", "volume": {"repository": "https://example.com/r.git", "path": "/r"}}
    wrong = await catalog.put("datasource", "repo", {**git, "credential": "hf"})
    assert wrong.error == ('credential "hf" is not of type password, which a git data source needs')
    await catalog.put("credential", "login", {"type": "password"})
    made = await catalog.put("datasource", "repo", {**git, "credential": "login"})
    assert made.asset is not None and made.asset.status == "No status"
    assert (await catalog.delete("credential", "login")).usedBy == ["datasource repo"]


# --- requests by event -----------------------------------------------------------------------


def requested(operation: str, kind: str, name: str, spec: dict[str, Any] | None = None) -> Any:
    return CatalogAssetRequestedV1(
        source="/berth/ui",
        subject=uuid.uuid4().hex,
        actor=ADMIN,
        data=AssetRequestedData.model_validate(
            {"operation": operation, "kind": kind, "name": name, "spec": spec or {}}
        ),
    )


async def test_requests_by_event_are_applied_each_on_its_own(catalog: Catalog) -> None:
    batch = [
        requested("create", "environment", "pytorch", PYTORCH),
        requested("create", "environment", "pytorch", PYTORCH),
        requested("create", "template", "train", {"environment": "pytorch"}),
        requested("delete", "environment", "pytorch"),
    ]
    async with catalog.uow:
        await handlers.apply_requests(
            [incoming(e) for e in batch],
            catalog.uow,
            cluster_id="local",
            workloads=catalog.workloads,
            store=catalog._of,
        )
    created, rejected, template, in_use = catalog.uow.events
    assert isinstance(created, CatalogAssetChangedV1) and created.causationid == batch[0].id
    assert isinstance(rejected, CatalogAssetRejectedV1)
    assert rejected.data.reason == 'environment "pytorch" already exists in the tenant'
    assert rejected.causationid == batch[1].id
    assert isinstance(template, CatalogAssetChangedV1)
    assert isinstance(in_use, CatalogAssetRejectedV1)
    assert in_use.data.usedBy == ["template train"]
    assert sorted(a.name for a in catalog.store.assets) == ["pytorch", "train"]


async def test_a_refused_request_leaves_nothing_behind() -> None:
    store = InMemoryCatalogStore()
    uow = FakeUnitOfWork(store)
    event = requested("create", "template", "t", {"dataSources": ["ghost"]})
    async with uow:
        await handlers.apply_requests(
            [incoming(event)],
            uow,
            cluster_id="local",
            workloads=no_workloads,
            store=lambda _: store,
        )
    (rejected,) = uow.events
    assert isinstance(rejected, CatalogAssetRejectedV1)
    assert rejected.data.reason == 'datasource "ghost" does not exist'
    assert list(store.assets) == []


# --- credential values -----------------------------------------------------------------------


def sealed_to(catalog: Catalog, values: dict[str, str]) -> dict[str, str]:
    key = catalog.keys.public_key()
    return {
        "sealedValues": seal(key.publicKey, json.dumps(values).encode()),
        "keyId": key.keyId,
    }


async def test_credential_values_are_stored_encrypted_and_never_in_events(
    catalog: Catalog,
) -> None:
    reply = await handlers.get_key(CatalogKeyRequest(), keys=catalog.keys)
    assert reply.key == catalog.keys.public_key()
    made = await catalog.put(
        "credential",
        "hf",
        {"type": "huggingface-token"},
        **sealed_to(catalog, {"HF_TOKEN": SECRET}),
    )
    assert made.asset is not None
    assert made.asset.spec["secretName"] == "berth-cred-hf"
    stored = catalog.store.values.get(made.asset.id)
    assert stored is not None and SECRET.encode() not in stored.ciphertext
    assert SECRET not in made.model_dump_json()
    for event in catalog.uow.events:
        assert SECRET not in event.model_dump_json()


async def test_values_in_clear_unknown_keys_and_values_for_other_kinds_are_refused(
    catalog: Catalog,
) -> None:
    clear = await catalog.put(
        "credential", "hf", {"type": "huggingface-token"}, secretValues={"HF_TOKEN": SECRET}
    )
    assert clear.error is not None and clear.error.startswith("secretValues: ")
    unknown = await catalog.put(
        "credential", "hf", {"type": "huggingface-token"}, **sealed_to(catalog, {"TOKEN": SECRET})
    )
    assert unknown.error == "unknown credential keys TOKEN; expected HF_TOKEN"
    other = await catalog.put("environment", "e", PYTORCH, **sealed_to(catalog, {"A": SECRET}))
    assert other.error == "secret values: only a credential takes them, not a environment"
    for text in (clear.error, unknown.error, other.error):
        assert SECRET not in text
    assert list(catalog.store.assets) == [] and catalog.uow.events == []


async def test_values_go_out_sealed_to_the_key_the_cluster_reported(
    catalog: Catalog, tmp_path: Path
) -> None:
    await catalog.organisation()
    await catalog.put(
        "credential",
        "hf",
        {"type": "huggingface-token"},
        **sealed_to(catalog, {"HF_TOKEN": SECRET}),
    )
    agent = SealingKeys.from_files(KeyFiles(tmp_path / "agent", "agent-local"))
    request = CredentialDeliveryRequest(
        clusterId="local", namespace="berth-team-a", secretNames=["berth-cred-hf", "other"]
    )
    unknown_cluster = await handlers.deliver_credentials(
        request, read=catalog.reader(), keys=catalog.keys
    )
    assert unknown_cluster.error == 'cluster "local" has not reported a credential key yet'
    report = ClusterConfigChangedV1(
        source="/berth/cluster-sync",
        subject="local",
        actor=Actor.system("cluster-sync"),
        data=ClusterConfigChangedData(
            clusterId="local",
            config=ClusterConfig(
                credentialKey={"keyId": agent.key_id, "publicKey": agent.public_key}
            ),
            changed=["credentialKey"],
        ),
    )
    async with catalog.uow:
        await handlers.record_cluster_keys([incoming(report)], catalog.uow, store=catalog._of)
    reply = await handlers.deliver_credentials(request, read=catalog.reader(), keys=catalog.keys)
    (delivered,) = reply.credentials
    assert reply.keyId == agent.key_id
    assert SECRET not in reply.model_dump_json()
    assert json.loads(agent.open(agent.key_id, delivered.sealedValues)) == {"HF_TOKEN": SECRET}
    assert [m.reason for m in reply.missing] == ["not a credential's Secret"]


# --- readers ---------------------------------------------------------------------------------


async def test_lists_and_lookups_see_what_a_project_sees(catalog: Catalog) -> None:
    await catalog.organisation()
    await catalog.put("environment", "shared", PYTORCH)
    await catalog.put("environment", "mine", PYTORCH, scope="project", scopeName="team-a")
    await catalog.put("environment", "theirs", PYTORCH, scope="project", scopeName="lab")
    listed = await handlers.list_assets(
        AssetListRequest(kind="environment", project="team-a"), read=catalog.reader()
    )
    assert [a.name for a in listed.assets] == ["mine", "shared"]
    nobody = await handlers.list_assets(AssetListRequest(project="ghost"), read=catalog.reader())
    assert nobody.assets == []
    tracer = TracerProvider().get_tracer(TRACER_NAME)
    resolved = await handlers.resolve_assets(
        AssetResolveRequest(refs=[AssetRef(kind="environment", name="mine")]),
        read=catalog.reader(),
        tracer=tracer,
    )
    assert [(a.scope, a.scopeName) for a in resolved.assets] == [("project", "team-a")]
    found = await handlers.lookup_projects(
        ProjectLookupRequest(
            items=[ProjectLookupItem(project="team-a"), ProjectLookupItem(project="ghost")]
        ),
        read=catalog.reader(),
        tracer=tracer,
    )
    assert list(found.projects) == ["team-a"]
    assert found.projects["team-a"].department == "research"
