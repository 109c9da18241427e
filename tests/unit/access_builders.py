"""Access rules for handler tests: who is which role where."""

from __future__ import annotations

from datetime import UTC, datetime

from berth.contracts.access import AccessRule, role_named, rule_id
from berth.shared.access import InMemoryAccessRules

ADMIN_EMAIL = "admin@example.com"


def rule(
    subject: str,
    role: str,
    scope_type: str = "tenant",
    scope_name: str = "",
    *,
    subject_type: str = "user",
    at: datetime | None = None,
) -> AccessRule:
    found = role_named(role)
    assert found is not None, role
    return AccessRule(
        id=rule_id(subject_type, subject, found, (scope_type, scope_name)),
        subjectId=subject,
        subjectType=subject_type,  # type: ignore[arg-type]
        roleId=found.id,
        roleName=found.name,
        scopeType=scope_type,  # type: ignore[arg-type]
        scopeId=scope_name,
        scopeName=scope_name,
        createdAt=at or datetime.now(UTC),
        createdBy="tests",
    )


def admin_rule(email: str = ADMIN_EMAIL) -> AccessRule:
    return rule(email, "System administrator")


def rules(*given: AccessRule) -> InMemoryAccessRules:
    """An in-memory copy of the rules; an administrator's when none are given."""
    return InMemoryAccessRules(given or (admin_rule(),))
