"""The policy store in memory, for handler tests: same port as the PostgreSQL store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from berth.contracts.policy import PolicyDocument, PolicyMeta, PolicyScope, PolicyType, ScopeRef
from berth.policy import engine
from berth.policy.store import Evaluation, Key, PolicyRow, PolicyStore
from berth.shared.testing import InMemoryTable


class InMemoryPolicyStore:
    """Policies by (type, scope, scope id), evaluations by workload; versions from a counter
    that, like the database sequence, never goes back (not even on a rollback)."""

    def __init__(self) -> None:
        self.policies: InMemoryTable[Key, PolicyRow] = InMemoryTable()
        self.evaluations: InMemoryTable[str, Evaluation] = InMemoryTable()
        self.locked: list[PolicyType] = []
        self.branch_reads = 0
        self._version = 0

    def _next_version(self) -> int:
        self._version += 1
        return self._version

    async def lock(self, policy_type: PolicyType) -> None:
        self.locked.append(policy_type)

    async def load(self, policy_type: PolicyType, ref: ScopeRef) -> PolicyRow | None:
        return self.policies.get((policy_type, ref.scope, ref.id))

    async def rows_for(self, keys: Iterable[Key]) -> list[PolicyRow]:
        self.branch_reads += 1
        wanted = set(keys)
        return [row for row in self.policies if row.key in wanted]

    async def listed(
        self, policy_type: PolicyType | None, scope: PolicyScope | None
    ) -> list[PolicyRow]:
        return sorted(
            (
                row
                for row in self.policies
                if policy_type in (None, row.policy_type) and scope in (None, row.scope)
            ),
            key=lambda row: row.key,
        )

    async def related(self, policy_type: PolicyType, meta: PolicyMeta) -> list[PolicyRow]:
        above = {(ref.scope, ref.id) for ref in engine.meta_branch(meta)}

        def below(row: PolicyRow) -> bool:
            if meta.scope == "tenant":
                return row.scope != "tenant"
            if meta.scope == "cluster":
                return row.cluster_id == meta.scope_id
            if meta.scope == "department":
                return row.department_id == meta.scope_id
            return False

        return [
            row
            for row in self.policies
            if row.policy_type == policy_type and ((row.scope, row.scope_id) in above or below(row))
        ]

    async def save(
        self, policy_type: PolicyType, meta: PolicyMeta, document: PolicyDocument, actor: str
    ) -> int:
        version = self._next_version()
        row = PolicyRow(
            policy_type=policy_type,
            scope=meta.scope,
            scope_id=meta.scope_id,
            cluster_id=meta.clusterId,
            department_id=meta.departmentId,
            name=meta.name,
            document=document.model_dump(mode="json"),
            version=version,
            updated_by=actor,
        )
        self.policies.put(row.key, row)
        return version

    async def remove(self, policy_type: PolicyType, ref: ScopeRef) -> int | None:
        if self.policies.delete((policy_type, ref.scope, ref.id)) is None:
            return None
        return self._next_version()

    async def record(self, outcomes: Sequence[Evaluation]) -> None:
        for outcome in outcomes:
            self.evaluations.insert_new(outcome.workload_id, outcome)

    def snapshot(self) -> Any:
        return self.policies.snapshot(), self.evaluations.snapshot()

    def restore(self, snapshot: Any) -> None:
        policies, evaluations = snapshot
        self.policies.restore(policies)
        self.evaluations.restore(evaluations)

    def of(self, _unit: object) -> PolicyStore:
        """As the store of any unit of work (the handlers' ``policies`` seam)."""
        return self

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[PolicyStore]:
        """As the store of a read-only query (the handlers' ``read`` seam)."""
        yield self
