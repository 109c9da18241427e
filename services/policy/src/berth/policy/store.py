"""Stored policies and evaluations: the store port the handlers use, its PostgreSQL adapter
(Core statements), and compiled policies cached by version."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Row, and_, delete, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.contracts.policy import (
    PolicyDocument,
    PolicyMeta,
    PolicyScope,
    PolicyType,
    ScopeRef,
    StoredPolicy,
)
from berth.policy.engine import Effective, ScopedPolicy, compile_policy, merge, meta_branch
from berth.policy.tables import evaluations, policies, version_seq
from berth.shared.store import SqlStore

Key = tuple[str, str, str]  # (policy type, scope, scope id)


@dataclass(frozen=True)
class PolicyRow:
    """One stored policy: its place in the organisation tree, its document and version."""

    policy_type: PolicyType
    scope: PolicyScope
    scope_id: str
    cluster_id: str | None
    department_id: str | None
    name: str | None
    document: dict[str, Any]
    version: int
    updated_by: str | None = None
    updated_at: datetime | None = None

    @property
    def key(self) -> Key:
        return (self.policy_type, self.scope, self.scope_id)


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating one workload, as recorded."""

    workload_id: str
    outcome: str
    effective_spec: dict[str, Any]
    issues: list[dict[str, Any]]


class PolicyStore(Protocol):
    """What the handlers read and write, inside the transaction of their unit of work."""

    async def lock(self, policy_type: PolicyType) -> None:
        """Serialise changes of one policy type: ownership checks read other scopes' rules, so
        two concurrent saves must not both pass them."""

    async def load(self, policy_type: PolicyType, ref: ScopeRef) -> PolicyRow | None: ...

    async def rows_for(self, keys: Iterable[Key]) -> list[PolicyRow]:
        """Every stored policy among ``keys`` (a batch's branches at once)."""

    async def listed(
        self, policy_type: PolicyType | None, scope: PolicyScope | None
    ) -> list[PolicyRow]:
        """Every stored policy (of one type, in one kind of scope, when given)."""

    async def related(self, policy_type: PolicyType, meta: PolicyMeta) -> list[PolicyRow]:
        """The policies of this type a new policy at ``meta`` must not conflict with: the scopes
        above it (as far as its meta names them) and every scope below it."""

    async def save(
        self, policy_type: PolicyType, meta: PolicyMeta, document: PolicyDocument, actor: str
    ) -> int:
        """Store (or replace) the policy of ``meta``'s scope; its new version."""

    async def remove(self, policy_type: PolicyType, ref: ScopeRef) -> int | None:
        """Delete a policy; the version of the deletion, or None when there was none."""

    async def record(self, outcomes: Sequence[Evaluation]) -> None:
        """Record evaluations; a workload keeps its first recorded outcome."""


Reader = Callable[[], AbstractAsyncContextManager[PolicyStore]]
"""Opens a store for reading (queries that change nothing)."""


def _row(row: Row[Any]) -> PolicyRow:
    return PolicyRow(
        policy_type=row.policy_type,
        scope=row.scope,
        scope_id=row.scope_id,
        cluster_id=row.cluster_id,
        department_id=row.department_id,
        name=row.name,
        document=row.document,
        version=row.version,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


class SqlPolicyStore(SqlStore):
    """The policy store in PostgreSQL, on one connection (one transaction)."""

    async def lock(self, policy_type: PolicyType) -> None:
        key = func.hashtext(f"policy:{policy_type}")
        await self._conn.execute(select(func.pg_advisory_xact_lock(key)))

    async def load(self, policy_type: PolicyType, ref: ScopeRef) -> PolicyRow | None:
        result = await self._conn.execute(
            select(policies).where(
                policies.c.policy_type == policy_type,
                policies.c.scope == ref.scope,
                policies.c.scope_id == ref.id,
            )
        )
        row = result.first()
        return None if row is None else _row(row)

    async def rows_for(self, keys: Iterable[Key]) -> list[PolicyRow]:
        wanted = list(set(keys))
        if not wanted:
            return []
        result = await self._conn.execute(
            select(policies).where(
                tuple_(policies.c.policy_type, policies.c.scope, policies.c.scope_id).in_(wanted)
            )
        )
        return [_row(r) for r in result.all()]

    async def listed(
        self, policy_type: PolicyType | None, scope: PolicyScope | None
    ) -> list[PolicyRow]:
        query = select(policies).order_by(
            policies.c.policy_type, policies.c.scope, policies.c.scope_id
        )
        if policy_type is not None:
            query = query.where(policies.c.policy_type == policy_type)
        if scope is not None:
            query = query.where(policies.c.scope == scope)
        result = await self._conn.execute(query)
        return [_row(r) for r in result.all()]

    async def related(self, policy_type: PolicyType, meta: PolicyMeta) -> list[PolicyRow]:
        above = [
            and_(policies.c.scope == ref.scope, policies.c.scope_id == ref.id)
            for ref in meta_branch(meta)
        ]
        below = {
            "tenant": policies.c.scope != "tenant",
            "cluster": policies.c.cluster_id == meta.scope_id,
            "department": policies.c.department_id == meta.scope_id,
            "project": None,
        }[meta.scope]
        conditions = [*above, *([below] if below is not None else [])]
        result = await self._conn.execute(
            select(policies).where(policies.c.policy_type == policy_type, or_(*conditions))
        )
        return [_row(r) for r in result.all()]

    async def save(
        self, policy_type: PolicyType, meta: PolicyMeta, document: PolicyDocument, actor: str
    ) -> int:
        version = int(await self._conn.scalar(select(version_seq.next_value())) or 0)
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
            set_={
                k: stmt.excluded[k] for k in values if k not in ("policy_type", "scope", "scope_id")
            }
            | {"updated_at": func.now()},
        )
        await self._conn.execute(stmt)
        return version

    async def remove(self, policy_type: PolicyType, ref: ScopeRef) -> int | None:
        result = await self._conn.execute(
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
        return int(await self._conn.scalar(select(version_seq.next_value())) or 0)

    async def record(self, outcomes: Sequence[Evaluation]) -> None:
        rows = [
            {
                "workload_id": o.workload_id,
                "outcome": o.outcome,
                "effective_spec": o.effective_spec,
                "issues": o.issues,
            }
            for o in outcomes
        ]
        await self.insert_new(evaluations, rows)


def reader(engine: AsyncEngine) -> Reader:
    """Read-only stores on connections of ``engine``."""

    @contextlib.asynccontextmanager
    async def read() -> AsyncIterator[PolicyStore]:
        async with engine.connect() as conn:
            yield SqlPolicyStore(conn)

    return read


def meta_of(row: PolicyRow) -> PolicyMeta:
    ids: dict[str, str | None] = {
        "clusterId": row.cluster_id,
        "departmentId": row.department_id,
        f"{row.scope}Id": row.scope_id or None,
    }
    if row.scope == "tenant":
        ids.pop("tenantId")
    return PolicyMeta(name=row.name, scope=row.scope, **ids)


def stored(row: PolicyRow) -> StoredPolicy:
    return StoredPolicy(
        type=row.policy_type,
        meta=meta_of(row),
        policy=PolicyDocument.model_validate(row.document),
        version=row.version,
        updatedBy=row.updated_by,
        updatedAt=row.updated_at,
    )


class CompiledCache:
    """Compiled policies and merged branches, keyed by version: a version names one content for
    ever (the sequence never repeats), so an entry can never be stale, only unused."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._compiled: OrderedDict[tuple[str, int], ScopedPolicy] = OrderedDict()
        self._merged: OrderedDict[tuple[Any, ...], Effective] = OrderedDict()

    def scoped(self, row: PolicyRow) -> ScopedPolicy:
        key = (row.policy_type, row.version)
        hit = self._compiled.get(key)
        if hit is None:
            compiled, _issues = compile_policy(
                row.policy_type,
                PolicyDocument.model_validate(row.document),
            )
            hit = ScopedPolicy(
                ScopeRef(scope=row.scope, id=row.scope_id),
                compiled,
                row.version,
            )
            self._put(self._compiled, key, hit)
        return hit

    def effective(self, policy_type: PolicyType, rows: Sequence[PolicyRow]) -> Effective:
        key = (policy_type, *sorted((r.scope, r.scope_id, r.version) for r in rows))
        hit = self._merged.get(key)
        if hit is None:
            hit = merge(policy_type, [self.scoped(r) for r in rows])
            self._put(self._merged, key, hit)
        return hit

    def _put(self, cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        cache[key] = value
        if len(cache) > self._size:
            cache.popitem(last=False)
