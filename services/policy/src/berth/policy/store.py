"""Stored policies: Core reads and writes, and compiled policies cached by version."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, and_, delete, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from berth.contracts.policy import PolicyDocument, PolicyMeta, PolicyType, ScopeRef, StoredPolicy
from berth.policy import engine
from berth.policy.tables import policies, version_seq

Key = tuple[str, str, str]  # (policy type, scope, scope id)


async def lock(conn: AsyncConnection, policy_type: PolicyType) -> None:
    """Serialise changes of one policy type: ownership checks read other scopes' rules, so two
    concurrent saves must not both pass them."""
    await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"policy:{policy_type}"))))


async def load(conn: AsyncConnection, policy_type: PolicyType, ref: ScopeRef) -> Row[Any] | None:
    result = await conn.execute(
        select(policies).where(
            policies.c.policy_type == policy_type,
            policies.c.scope == ref.scope,
            policies.c.scope_id == ref.id,
        )
    )
    return result.first()


async def rows_for(conn: AsyncConnection, keys: Iterable[Key]) -> list[Row[Any]]:
    """Every stored policy among ``keys``, in one statement (a batch's branches at once)."""
    wanted = list(set(keys))
    if not wanted:
        return []
    result = await conn.execute(
        select(policies).where(
            tuple_(policies.c.policy_type, policies.c.scope, policies.c.scope_id).in_(wanted)
        )
    )
    return list(result.all())


async def related(
    conn: AsyncConnection, policy_type: PolicyType, meta: PolicyMeta
) -> list[Row[Any]]:
    """The policies of this type a new policy at ``meta`` must not conflict with: the scopes above
    it (as far as its meta names them) and every scope below it."""
    above = [
        and_(policies.c.scope == ref.scope, policies.c.scope_id == ref.id)
        for ref in engine.meta_branch(meta)
    ]
    below = {
        "tenant": policies.c.scope != "tenant",
        "cluster": policies.c.cluster_id == meta.scope_id,
        "department": policies.c.department_id == meta.scope_id,
        "project": None,
    }[meta.scope]
    conditions = [*above, *([below] if below is not None else [])]
    result = await conn.execute(
        select(policies).where(policies.c.policy_type == policy_type, or_(*conditions))
    )
    return list(result.all())


async def save(
    conn: AsyncConnection,
    policy_type: PolicyType,
    meta: PolicyMeta,
    document: PolicyDocument,
    actor: str,
) -> int:
    version = int(await conn.scalar(select(version_seq.next_value())) or 0)
    values = {
        "policy_type": policy_type,
        "scope": meta.scope,
        "scope_id": meta.scope_id,
        "cluster_id": meta.clusterId,
        "department_id": meta.departmentId,
        "name": meta.name,
        "document": document.model_dump(mode="json"),
        "version": version,
        "updated_by": actor,
    }
    stmt = insert(policies).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[policies.c.policy_type, policies.c.scope, policies.c.scope_id],
        set_={k: stmt.excluded[k] for k in values if k not in ("policy_type", "scope", "scope_id")}
        | {"updated_at": func.now()},
    )
    await conn.execute(stmt)
    return version


async def remove(conn: AsyncConnection, policy_type: PolicyType, ref: ScopeRef) -> int | None:
    """Delete a policy; the version of the deletion, or None when there was none."""
    result = await conn.execute(
        delete(policies)
        .where(
            policies.c.policy_type == policy_type,
            policies.c.scope == ref.scope,
            policies.c.scope_id == ref.id,
        )
        .returning(policies.c.version)
    )
    if result.first() is None:
        return None
    return int(await conn.scalar(select(version_seq.next_value())) or 0)


def meta_of(row: Row[Any]) -> PolicyMeta:
    ids: dict[str, str | None] = {
        "clusterId": row.cluster_id,
        "departmentId": row.department_id,
        f"{row.scope}Id": row.scope_id or None,
    }
    if row.scope == "tenant":
        ids.pop("tenantId")
    return PolicyMeta(name=row.name, scope=row.scope, **ids)


def stored(row: Row[Any]) -> StoredPolicy:
    return StoredPolicy(
        type=row.policy_type,
        meta=meta_of(row),
        policy=PolicyDocument.model_validate(row.document),
        version=row.version,
        updatedBy=row.updated_by,
    )


class CompiledCache:
    """Compiled policies and merged branches, keyed by version: a version names one content for
    ever (the sequence never repeats), so an entry can never be stale, only unused."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._compiled: OrderedDict[tuple[str, int], engine.ScopedPolicy] = OrderedDict()
        self._merged: OrderedDict[tuple[Any, ...], engine.Effective] = OrderedDict()

    def scoped(self, row: Row[Any]) -> engine.ScopedPolicy:
        key = (row.policy_type, row.version)
        hit = self._compiled.get(key)
        if hit is None:
            compiled, _issues = engine.compile_policy(
                row.policy_type, PolicyDocument.model_validate(row.document)
            )
            hit = engine.ScopedPolicy(
                ScopeRef(scope=row.scope, id=row.scope_id), compiled, row.version
            )
            self._put(self._compiled, key, hit)
        return hit

    def effective(self, policy_type: PolicyType, rows: Sequence[Row[Any]]) -> engine.Effective:
        key = (policy_type, *sorted((r.scope, r.scope_id, r.version) for r in rows))
        hit = self._merged.get(key)
        if hit is None:
            hit = engine.merge(policy_type, [self.scoped(r) for r in rows])
            self._put(self._merged, key, hit)
        return hit

    def _put(self, cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        cache[key] = value
        if len(cache) > self._size:
            cache.popitem(last=False)
