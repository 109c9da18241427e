"""The catalog store port, on PostgreSQL and in memory: the same answers, so that handler unit
tests on the in-memory store say what the service does on the real one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from berth.catalog.store import CatalogStore, Ciphertext, NewAsset, SqlCatalogStore
from berth.contracts.catalog import AssetRef
from berth.contracts.events import PublicKey
from tests.integration.stores import store_runner
from tests.unit.catalog.catalog_fakes import InMemoryCatalogStore

Scenario = Callable[[CatalogStore], Awaitable[Any]]
Run = Callable[[Scenario], Awaitable[Any]]


@pytest.fixture(params=["postgres", "memory"])
async def run(request: pytest.FixtureRequest) -> AsyncIterator[Run]:
    """Runs a scenario against one store implementation, in one transaction."""
    async with store_runner(request, "berth.catalog", SqlCatalogStore, InMemoryCatalogStore) as run:
        yield run


def asset(
    kind: str, name: str, spec: dict[str, Any], scope: str = "tenant", where: str = ""
) -> Any:
    return NewAsset(
        id=f"{kind}-{scope}-{where}-{name}",
        kind=kind,
        name=name,
        scope=scope,
        scope_name=where,
        spec=spec,
        status=None,
        status_reason="",
        created_by="admin@x",
    )


async def organisation(store: CatalogStore) -> None:
    await store.insert_org("department", {"name": "research", "cluster_id": "local"})
    for name, department in (("team-a", "research"), ("lab", None)):
        row = {
            "name": name,
            "department": department,
            "cluster_id": "local",
            "namespace": f"berth-{name}",
            "queue": name,
        }
        await store.insert_org("project", row)


async def test_organisation_units_are_inserted_once_updated_and_found(run: Run) -> None:
    async def scenario(store: CatalogStore) -> Any:
        await organisation(store)
        again = await store.insert_org("department", {"name": "research", "cluster_id": "x"})
        moved = await store.update_org("project", "lab", {"queue": "q"})
        missing = await store.update_org("project", "ghost", {"queue": "q"})
        return (
            again,
            moved,
            missing,
            await store.org_exists("department", "research"),
            await store.org_exists("project", "ghost"),
            await store.projects(["team-a", "ghost"]),
            await store.project_in("berth-lab"),
            await store.find(AssetRef(kind="project", name="team-a")),
        )

    again, moved, missing, exists, ghost, projects, lab, found = await run(scenario)
    assert again is None and missing is None and exists and not ghost
    assert moved.spec["queue"] == "q" and moved.scope == "cluster"
    assert list(projects) == ["team-a"] and projects["team-a"].department == "research"
    assert lab is not None and lab.name == "lab"
    assert [(v.id, v.scope, v.scopeName) for v in found] == [
        ("project-team-a", "department", "research")
    ]


async def test_assets_are_unique_per_kind_scope_and_name_and_found_by_scope(run: Run) -> None:
    async def scenario(store: CatalogStore) -> Any:
        await organisation(store)
        first = await store.insert_asset(asset("environment", "pytorch", {"image": "a"}))
        same = await store.insert_asset(
            replace(asset("environment", "pytorch", {"image": "b"}), id="other-id")
        )
        local = await store.insert_asset(
            asset("environment", "pytorch", {"image": "c"}, "project", "team-a")
        )
        credential = await store.insert_asset(
            asset("credential", "hf", {"type": "huggingface-token"})
        )
        updated = await store.update_asset(
            AssetRef(kind="environment", name="pytorch", scope="tenant"),
            {"image": "d"},
            "No issues found",
            "fine",
        )
        absent = await store.update_asset(
            AssetRef(kind="environment", name="ghost", scope="tenant"), {}, None, ""
        )
        everywhere = await store.find(AssetRef(kind="environment", name="pytorch"))
        scoped = await store.find(
            AssetRef(kind="environment", name="pytorch", scope="project", scopeName="team-a")
        )
        return first, same, local, credential, updated, absent, everywhere, scoped

    first, same, local, credential, updated, absent, everywhere, scoped = await run(scenario)
    assert first is not None and local is not None and same is None and absent is None
    assert credential.spec["secretName"] == "berth-cred-hf"
    assert (updated.spec, updated.status, updated.statusReason) == (
        {"image": "d"},
        "No issues found",
        "fine",
    )
    assert sorted(v.scope for v in everywhere) == ["project", "tenant"]
    assert [v.spec["image"] for v in scoped] == ["c"]


async def test_users_and_lists_answer_alike(run: Run) -> None:
    async def scenario(store: CatalogStore) -> Any:
        await organisation(store)
        env = await store.insert_asset(asset("environment", "pytorch", {"image": "a"}))
        data = await store.insert_asset(asset("datasource", "data", {"type": "pvc"}))
        login = await store.insert_asset(asset("credential", "login", {"type": "password"}))
        await store.insert_asset(
            asset("datasource", "repo", {"type": "git", "credential": "login"})
        )
        await store.insert_asset(
            asset("template", "t", {"environment": "pytorch", "dataSources": ["data"]})
        )
        await store.insert_asset(asset("compute", "c", {}, "project", "team-a"))
        research = (await store.find(AssetRef(kind="department", name="research")))[0]
        team_a = (await store.find(AssetRef(kind="project", name="team-a")))[0]
        return {
            "env": await store.users_of(env),
            "data": await store.users_of(data),
            "login": await store.users_of(login),
            "research": await store.users_of(research),
            "team-a": await store.users_of(team_a),
            "list": [
                (v.kind, v.name)
                for v in await store.list_assets(None, None, {("tenant", ""), ("project", "lab")})
            ],
            "search": [v.name for v in await store.list_assets("environment", "tor", None)],
            "projects": [v.name for v in await store.list_assets("project", None, None)],
        }

    assert await run(scenario) == {
        "env": ["template t"],
        "data": ["template t"],
        "login": ["datasource repo"],
        "research": ["project team-a"],
        "team-a": ["compute c"],
        "list": [
            ("department", "research"),
            ("project", "lab"),
            ("project", "team-a"),
            ("credential", "login"),
            ("datasource", "data"),
            ("datasource", "repo"),
            ("environment", "pytorch"),
            ("template", "t"),
        ],
        "search": ["pytorch"],
        "projects": ["lab", "team-a"],
    }


async def test_deleting_and_keys_and_ciphertexts(run: Run) -> None:
    async def scenario(store: CatalogStore) -> Any:
        await organisation(store)
        cred = await store.insert_asset(asset("credential", "hf", {"type": "huggingface-token"}))
        await store.save_values(cred.id, Ciphertext("k1", b"box-1"))
        await store.save_values(cred.id, Ciphertext("k2", b"box-2"))
        stored = await store.values_of(cred.id)
        stale = await store.values_not_under("k3"), await store.values_not_under("k2")
        await store.record_cluster_key("local", PublicKey(keyId="2", publicKey="new"))
        await store.record_cluster_key("local", PublicKey(keyId="1", publicKey="old"))
        key = await store.cluster_key("local"), await store.cluster_key("edge")
        await store.delete(cred)
        lab = (await store.find(AssetRef(kind="project", name="lab")))[0]
        await store.delete(lab)
        return (
            stored,
            stale,
            key,
            await store.values_of(cred.id),
            await store.find(AssetRef(kind="credential", name="hf")),
            await store.org_exists("project", "lab"),
            await store.legacy_values(),
        )

    stored, stale, key, after, found, lab, legacy = await run(scenario)
    assert stored == Ciphertext("k2", b"box-2")
    assert stale == (["credential-tenant--hf"], [])
    assert key == (PublicKey(keyId="2", publicKey="new"), None)
    assert (after, found, lab, legacy) == (None, [], False, {})


async def test_a_savepoint_undoes_only_its_own_writes(run: Run) -> None:
    async def scenario(store: CatalogStore) -> Any:
        await store.insert_asset(asset("environment", "kept", {"image": "a"}))
        with contextlib.suppress(RuntimeError):
            async with store.savepoint():
                await store.insert_asset(asset("environment", "undone", {"image": "a"}))
                raise RuntimeError("refused")
        return [v.name for v in await store.list_assets("environment", None, None)]

    assert await run(scenario) == ["kept"]
