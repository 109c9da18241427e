"""Access rules in a running service's own copy, for tests that start a service without the
catalog (which would otherwise announce them)."""

from __future__ import annotations

from datetime import UTC, datetime

from berth.contracts.access import TENANT, AccessRule, role_named, rule_id
from berth.shared.access import ACCESS_RULES, SqlAccessRules
from berth.shared.service import Service

ADMIN_EMAIL = "admin@example.com"


def rule(subject: str, role: str, scope: tuple[str, str] = TENANT) -> AccessRule:
    found = role_named(role)
    assert found is not None, role
    return AccessRule(
        id=rule_id("user", subject, found, scope),
        subjectId=subject,
        subjectType="user",
        roleId=found.id,
        roleName=found.name,
        scopeType=scope[0],  # type: ignore[arg-type]
        scopeId=scope[1],
        scopeName=scope[1],
        createdAt=datetime.now(UTC),
        createdBy="tests",
    )


async def grant(service: Service, *rules: AccessRule) -> None:
    """Put ``rules`` (the administrator's when none) into ``service``'s copy; the service must
    have started (its migrations made the table)."""
    table = service.outbox_table.metadata.tables[f"{service.schema}.{ACCESS_RULES}"]
    async with service.engine.begin() as conn:
        await SqlAccessRules(conn, table).record_created(
            list(rules) or [rule(ADMIN_EMAIL, "System administrator")]
        )
