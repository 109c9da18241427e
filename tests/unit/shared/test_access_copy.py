"""A service's copy of the access rules: creations and deletions arrive through two consumers, in
any order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData

from berth.contracts.access import AccessRuleCreatedV1, AccessRuleDeletedV1
from berth.contracts.envelope import Actor
from berth.shared import access
from berth.shared.access import InMemoryAccessRules
from berth.shared.testing import FakeUnitOfWork, incoming
from tests.unit.access_builders import rule

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ACTOR = Actor.system("catalog")


def created(at: datetime = T0) -> AccessRuleCreatedV1:
    data = rule("bob@example.com", "Viewer", at=at)
    return AccessRuleCreatedV1(source="/berth/catalog", subject=data.id, actor=ACTOR, data=data)


def deleted(at: datetime = T0) -> AccessRuleDeletedV1:
    data = rule("bob@example.com", "Viewer", at=at)
    return AccessRuleDeletedV1(source="/berth/catalog", subject=data.id, actor=ACTOR, data=data)


async def apply(
    copy: InMemoryAccessRules, *events: AccessRuleCreatedV1 | AccessRuleDeletedV1
) -> None:
    uow = FakeUnitOfWork(copy)
    for event in events:
        if isinstance(event, AccessRuleCreatedV1):
            await access.record_created([incoming(event)], uow, store=lambda _u: copy)
        else:
            await access.record_deleted([incoming(event)], uow, store=lambda _u: copy)


async def test_a_created_rule_is_in_force_until_deleted() -> None:
    copy = InMemoryAccessRules()
    await apply(copy, created())
    assert [r.subjectId for r in await copy.access_rules()] == ["bob@example.com"]
    await apply(copy, deleted())
    assert await copy.access_rules() == []


async def test_a_deletion_that_arrives_first_wins_over_its_late_creation() -> None:
    copy = InMemoryAccessRules()
    await apply(copy, deleted(), created())
    assert await copy.access_rules() == []
    assert len(await copy.all_access_rules()) == 1


async def test_the_same_grant_made_again_later_is_in_force_again() -> None:
    copy = InMemoryAccessRules()
    later = T0 + timedelta(hours=1)
    await apply(copy, created(), deleted(), created(later))
    (again,) = await copy.access_rules()
    assert again.createdAt == later
    # The old deletion, redelivered, does not remove the new grant.
    await apply(copy, deleted())
    assert await copy.access_rules() == [again]


def test_every_enforcing_service_consumes_both_events_under_its_own_durable() -> None:
    for role in ("intake", "policy", "ownership", "cluster-sync"):
        table = access.access_rules_table(MetaData())
        durables = [s.durable for s in access.subscriptions(role, table)]
        assert durables == [f"{role}-access-rules-created", f"{role}-access-rules-deleted"]
