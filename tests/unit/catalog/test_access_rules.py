"""The catalog owns the access rules and enforces them on the organisation and assets."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.catalog import handlers
from berth.contracts.access import (
    AccessRuleCreatedV1,
    AccessRuleCreateRequest,
    AccessRuleDeletedV1,
    AccessRuleDeleteRequest,
    AccessRuleListRequest,
)
from berth.contracts.catalog import (
    AssetDeleteRequest,
    AssetPutRequest,
    AssetRef,
    AssetRequestedData,
    CatalogAssetRejectedV1,
    CatalogAssetRequestedV1,
)
from berth.contracts.envelope import Actor
from berth.shared.testing import incoming
from tests.unit.access_builders import rule
from tests.unit.catalog.test_handlers import ADMIN, Catalog

pytestmark = pytest.mark.unit

BOB = Actor(email="bob@example.com")
ALICE = Actor(email="alice@example.com")


async def catalog(tmp_path: Path) -> Catalog:
    service = Catalog(tmp_path)
    await service.organisation()
    return service


def grant_request(
    actor: Actor | None, subject: str, role: str, scope: str = "tenant", name: str = ""
) -> AccessRuleCreateRequest:
    return AccessRuleCreateRequest.model_validate(
        {
            "actor": actor,
            "subjectId": subject,
            "roleName": role,
            "scopeType": scope,
            "scopeId": name,
        }
    )


async def test_the_administrator_grants_a_rule_which_is_announced(tmp_path: Path) -> None:
    service = await catalog(tmp_path)
    reply = await handlers.create_access_rule(
        grant_request(ADMIN, "bob@example.com", "L1 researcher", "project", "team-a"),
        writer=service.writer,
    )
    assert reply.error is None and reply.accessRule is not None
    assert reply.accessRule.roleId == 5 and reply.accessRule.clusterId == "local"
    assert reply.accessRule.createdBy == ADMIN.email
    (event,) = service.uow.events_of(AccessRuleCreatedV1)
    assert event.data == reply.accessRule and event.subject == reply.accessRule.id

    again = await handlers.create_access_rule(
        grant_request(ADMIN, "bob@example.com", "L1 researcher", "project", "team-a"),
        writer=service.writer,
    )
    assert again.error == "bob@example.com is already L1 researcher in project team-a"


async def test_a_grant_names_an_existing_role_and_scope(tmp_path: Path) -> None:
    service = await catalog(tmp_path)
    for request, error in (
        (grant_request(ADMIN, "x", "Wizard"), 'no role "Wizard" (see berth role list)'),
        (grant_request(ADMIN, "x", "Viewer", "project", "nope"), 'project "nope" does not exist'),
        (
            grant_request(ADMIN, "x", "Viewer", "project"),
            "a project scope needs a name (--scope-name)",
        ),
        (
            grant_request(None, "x", "Viewer"),
            "forbidden: an anonymous caller may not grant roles (no identity)",
        ),
    ):
        assert (await handlers.create_access_rule(request, writer=service.writer)).error == error
    assert service.uow.events_of(AccessRuleCreatedV1) == []


async def test_a_department_administrator_grants_researchers_in_its_department_only(
    tmp_path: Path,
) -> None:
    service = await catalog(tmp_path)
    await service.store.record_created(
        [rule(BOB.email, "Department administrator", "department", "research")]
    )
    ok = await handlers.create_access_rule(
        grant_request(BOB, "alice@example.com", "L1 researcher", "project", "team-a"),
        writer=service.writer,
    )
    assert ok.error is None
    outside = await handlers.create_access_rule(
        grant_request(BOB, "alice@example.com", "L1 researcher", "project", "lab"),
        writer=service.writer,
    )
    assert outside.error == (
        "forbidden: bob@example.com may not grant access-rules in project lab "
        "(no access rule grants access-rules.create there)"
    )
    higher = await handlers.create_access_rule(
        grant_request(BOB, "alice@example.com", "System administrator", "department", "research"),
        writer=service.writer,
    )
    assert higher.error is not None and "may not grant System administrator" in higher.error


async def test_rules_are_listed_to_who_may_read_them_and_deleted_by_who_may(
    tmp_path: Path,
) -> None:
    service = await catalog(tmp_path)
    alice_rule = rule(ALICE.email, "L1 researcher", "project", "team-a")
    await service.store.record_created([alice_rule])

    async def listed(actor: Actor | None) -> list[str] | str:
        reply = await handlers.list_access_rules(
            AccessRuleListRequest(actor=actor), read=service.reader()
        )
        return reply.error or [r.subjectId for r in reply.accessRules]

    assert await listed(ADMIN) == [ADMIN.email, ALICE.email]
    assert await listed(ALICE) == [ALICE.email]  # one's own rules
    assert await listed(BOB) == []
    assert isinstance(await listed(None), str)

    denied = await handlers.delete_access_rule(
        AccessRuleDeleteRequest(actor=ALICE, id=alice_rule.id), writer=service.writer
    )
    assert denied.error is not None and denied.error.startswith("forbidden: alice@example.com")
    done = await handlers.delete_access_rule(
        AccessRuleDeleteRequest(actor=ADMIN, id=alice_rule.id), writer=service.writer
    )
    assert done.accessRule == alice_rule
    (event,) = service.uow.events_of(AccessRuleDeletedV1)
    assert event.data == alice_rule
    assert await listed(ALICE) == []


async def test_bootstrap_makes_the_administrator_and_demo_rules_once(tmp_path: Path) -> None:
    service = await catalog(tmp_path)
    await service.put("project", "team-b", {"department": "research"})
    service.store.rules.rules.clear()

    events = await handlers.bootstrap_access(
        service.store, admin="root@localhost", demo=True, cluster_id="local"
    )
    assert [(e.data.subjectId, e.data.roleName, e.data.scopeName) for e in events] == [
        ("root@localhost", "System administrator", ""),
        ("alice@example.com", "L1 researcher", "team-a"),
        ("bob@example.com", "L1 researcher", "team-b"),
    ]
    assert (
        await handlers.bootstrap_access(
            service.store, admin="root@localhost", demo=True, cluster_id="local"
        )
        == []
    )
    # A demo rule an administrator deleted stays deleted across restarts.
    await service.store.record_deleted([events[1].data])
    assert (
        await handlers.bootstrap_access(
            service.store, admin="root@localhost", demo=True, cluster_id="local"
        )
        == []
    )


async def test_assets_and_the_organisation_need_a_rule_where_they_live(tmp_path: Path) -> None:
    service = await catalog(tmp_path)
    await service.store.record_created([rule(ALICE.email, "L1 researcher", "project", "team-a")])

    async def put(actor: Actor, kind: str, name: str, **fields: object) -> str | None:
        request = AssetPutRequest.model_validate(
            {"actor": actor, "kind": kind, "name": name, "spec": {"image": "x"}, **fields}
        )
        return (await handlers.put_asset(request, writer=service.writer)).error

    assert await put(ALICE, "environment", "mine", scope="project", scopeName="team-a") is None
    assert await put(ALICE, "environment", "theirs", scope="project", scopeName="lab") == (
        "forbidden: alice@example.com may not create environments in project lab "
        "(no access rule grants environments.create there)"
    )
    assert (await put(ALICE, "environment", "everyone")) is not None
    denied = await handlers.put_asset(
        AssetPutRequest(
            actor=ALICE, kind="project", name="new-lab", spec={"department": "research"}
        ),
        writer=service.writer,
    )
    assert denied.error is not None and "may not create projects in project new-lab" in denied.error
    deleted = await handlers.delete_asset(
        AssetDeleteRequest(actor=ALICE, ref=AssetRef(kind="project", name="team-a")),
        writer=service.writer,
    )
    assert (
        deleted.error is not None and "may not delete projects in project team-a" in deleted.error
    )


async def test_an_asset_request_event_from_someone_without_a_rule_is_rejected(
    tmp_path: Path,
) -> None:
    service = await catalog(tmp_path)
    event = CatalogAssetRequestedV1(
        source="/berth/ui",
        subject="req-1",
        actor=BOB,
        data=AssetRequestedData(operation="create", kind="department", name="mine"),
    )
    async with service.uow:
        await handlers.apply_requests(
            [incoming(event)],
            service.uow,
            cluster_id="local",
            workloads=service.workloads,
            store=service._of,
        )
    (rejected,) = service.uow.events_of(CatalogAssetRejectedV1)
    assert rejected.data.reason.startswith("forbidden: bob@example.com may not create departments")
