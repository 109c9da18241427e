"""Intake's state: the store port the handlers use, and its PostgreSQL adapter (batched Core
statements, on the unit of work's connection so that state and events commit together)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    Text,
    any_,
    bindparam,
    case,
    cast,
    func,
    or_,
    select,
    text,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from berth.contracts.access import AccessRule
from berth.contracts.catalog import AssetRef, AssetView
from berth.contracts.events import TERMINAL_PHASES, ClusterRecord
from berth.contracts.queries import ProjectInfo
from berth.intake import clusters, projection, quota, tables
from berth.intake.tables import (
    LIVE,
    catalog_entries,
    phase_history,
    workload_assets,
    workloads,
)
from berth.shared.access import in_force
from berth.shared.store import SqlStore

# Inlined rather than bound: executemany cannot expand an IN list per row.
NOT_TERMINAL = text(
    "(phase IS NULL OR phase NOT IN ({}))".format(
        ", ".join(f"'{p}'" for p in sorted(TERMINAL_PHASES))
    )
)


def _unnest(name: str, **arrays: Any) -> Any:
    """Rows from one array parameter per column: a batch in one statement whatever its size."""
    return (
        func.unnest(*(cast(bindparam(key, type_=t), t) for key, t in arrays.values()))
        .table_valued(*arrays)
        .render_derived(name=name)
    )


_approved = _unnest("approved", wid=("wids", ARRAY(Text())), spec=("specs", ARRAY(Text())))
_APPROVE = (
    update(workloads)
    .where(workloads.c.id == _approved.c.wid, workloads.c.status == "received")
    .values(status="approved", effective_spec=cast(_approved.c.spec, JSONB))
)
_reported = _unnest(
    "reported",
    wid=("wids", ARRAY(Text())),
    new_phase=("phases", ARRAY(Text())),
    new_message=("messages", ARRAY(Text())),
    new_at=("ats", ARRAY(DateTime(timezone=True))),
    new_running=("running", ARRAY(Integer())),
    new_requested=("requested", ARRAY(Integer())),
)
_PHASES = (
    update(workloads)
    .where(
        workloads.c.id == _reported.c.wid,
        or_(workloads.c.phase_at.is_(None), workloads.c.phase_at <= _reported.c.new_at),
        # A terminal phase is final, whatever order late events arrive in.
        NOT_TERMINAL,
    )
    .values(
        status=_reported.c.new_phase,
        phase=_reported.c.new_phase,
        phase_message=_reported.c.new_message,
        phase_at=_reported.c.new_at,
        running_pods=_reported.c.new_running,
        requested_pods=_reported.c.new_requested,
    )
)


def _phases_that_matter(changes: Sequence[PhaseChange]) -> dict[str, list[PhaseChange]]:
    """Each workload's changes, in order, less those that ``_PHASES`` applied one by one would
    leave no trace of: a change that is not terminal, right before one no earlier than it
    (again for the change before it, once it is dropped).

    Say ``a`` comes right before ``b``, ``a.at <= b.at`` and ``a`` is not terminal. If ``a``
    applies, the row holds a phase that is not terminal, at ``a.at <= b.at``, so ``b`` applies
    too and writes every column ``a`` wrote; and ``a`` applied only because the row's phase_at
    was NULL or ``<= a.at <= b.at`` and its phase not terminal, so ``b`` alone applies to that
    row as well. If ``a`` does not apply, ``b`` meets the row as it was. Either way ``a`` then
    ``b`` ends where ``b`` alone does. A batch of a workload's phases in order (Creating,
    Pending, Running) is thus one change, and one statement for the whole batch."""
    kept: dict[str, list[PhaseChange]] = {}
    for change in changes:
        mine = kept.setdefault(change.workload_id, [])
        while mine and mine[-1].at <= change.at and mine[-1].phase not in TERMINAL_PHASES:
            mine.pop()
        mine.append(change)
    return kept


def _json_rows(*columns: Any, where: Sequence[Any], table: Any) -> Any:
    """The matching rows as one JSON array of arrays (NULL when none match)."""
    rows = select(func.json_agg(func.json_build_array(*columns))).select_from(table).where(*where)
    return type_coerce(rows.scalar_subquery(), JSON)


_named = _unnest("named", project=("projects", ARRAY(Text())), named=("names", ARRAY(Text())))
_TEXTS = ARRAY(Text())

# What judging a batch reads before the catalog answers (``Judging``), in one round trip, each
# part a subquery. Its parameters are arrays, so that one statement text (prepared once per
# connection) serves every batch size.
_JUDGING = select(
    _json_rows(
        workloads.c.project,
        workloads.c.name,
        table=workloads,
        where=(
            tuple_(workloads.c.project, workloads.c.name).in_(
                select(_named.c.project, _named.c.named)
            ),
            LIVE,
        ),
    ).label("taken"),
    _json_rows(
        workloads.c.id,
        workloads.c.content_hash,
        table=workloads,
        where=(workloads.c.id == any_(cast(bindparam("ids", type_=_TEXTS), _TEXTS)),),
    ).label("known"),
    _json_rows(
        catalog_entries.c.name,
        table=catalog_entries,
        where=(catalog_entries.c.kind == "nodepool", catalog_entries.c.deleted.is_(False)),
    ).label("pools"),
    _json_rows(
        tables.clusters.c.cluster_id,
        tables.clusters.c.capabilities,
        table=tables.clusters,
        where=(),
    ).label("clusters"),
    _json_rows(
        catalog_entries.c.asset,
        table=catalog_entries,
        where=(
            catalog_entries.c.kind == "project",
            catalog_entries.c.name == any_(cast(bindparam("wanted", type_=_TEXTS), _TEXTS)),
            catalog_entries.c.deleted.is_(False),
        ),
    ).label("projects"),
    _json_rows(
        tables.access_rules.c.rule,
        table=tables.access_rules,
        where=(in_force(tables.access_rules),),
    ).label("rules"),
)


@dataclass(frozen=True)
class Judging:
    """What intake knows when it judges a batch of submissions (``IntakeStore.judging``)."""

    # The (project, name) pairs asked about that a live workload holds (not rejected, not
    # deleted).
    taken: set[tuple[str, str]]
    # The workload ids asked about that are recorded, with the content hash of their submission.
    known: dict[str, str | None]
    # The node pools seen in the catalog (none before its first event).
    pools: set[str]
    # The registered clusters, with what each reported it can run.
    registry: clusters.Registry
    # Deserved GPUs of the projects asked about that have a quota; one without is unlimited.
    quotas: dict[str, float]
    # The access rules in force (intake's copy, ``berth.shared.access``).
    rules: list[AccessRule]


@dataclass(frozen=True)
class WorkloadRow:
    """A submission as intake records it: received (its complete spec) or rejected (as it came,
    with its issues)."""

    id: str
    name: str | None
    project: str | None
    kind: str | None
    cluster_id: str | None
    created_by: str
    status: str
    trace_id: str | None
    submission: dict[str, Any]
    issues: list[dict[str, Any]]
    content_hash: str | None
    # Ids of the catalog assets a received workload was resolved from.
    assets: tuple[str, ...] = ()
    # The WorkloadRef a received workload was accepted with (JSON); none for a rejection.
    ref: dict[str, Any] | None = None


@dataclass(frozen=True)
class TargetRow:
    """A received workload as an action on it is judged: who created it, where it lives, its
    current phase (``ref``: as accepted; none for a workload received before intake kept it)."""

    workload_id: str
    name: str
    project: str
    kind: str
    cluster_id: str
    created_by: str
    phase: str | None
    live: bool
    ref: dict[str, Any] | None


@dataclass(frozen=True)
class PhaseChange:
    """A workload's phase as its cluster reported it, at the time of the report."""

    workload_id: str
    phase: str
    message: str
    at: datetime
    running_pods: int = 0
    requested_pods: int = 0


@dataclass(frozen=True)
class CatalogEntry:
    """One catalog asset as intake keeps it (a deleted one stays, as a tombstone)."""

    asset: AssetView
    deleted: bool
    changed_at: datetime


class IntakeStore(Protocol):
    """What the handlers read and write, inside the transaction of their unit of work."""

    async def usage(self, projects: Sequence[str]) -> dict[str, float]:
        """GPUs the live, unfinished workloads of each project request."""

    async def judging(
        self, names: Sequence[tuple[str, str]], ids: Sequence[str], projects: Sequence[str]
    ) -> Judging:
        """At once, what judging the submissions that name the (project, name) pairs ``names``,
        the workload ids ``ids`` and the ``projects`` needs to know."""

    async def projects(self, names: Sequence[str]) -> dict[str, ProjectInfo]:
        """Projects from intake's copy of the catalog."""

    async def assets(self, refs: Sequence[AssetRef]) -> list[AssetView]:
        """Assets from intake's copy of the catalog."""

    async def action_targets(
        self, ids: Sequence[str], names: Sequence[tuple[str, str]]
    ) -> list[TargetRow]:
        """The received workloads with one of ``ids`` or one of the (project, name) pairs,
        live ones first, then the latest submitted first (a submission intake rejected was
        never a workload)."""

    async def record_workloads(self, rows: Sequence[WorkloadRow]) -> None:
        """Record submissions, with the assets each was resolved from; an id already recorded
        keeps its first record."""

    async def approve(self, specs: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Received workloads approved by policy, with their effective spec."""

    async def reject(self, issues: Sequence[tuple[str, list[dict[str, Any]]]]) -> None:
        """Workloads policy rejected, with its issues."""

    async def record_phases(self, changes: Sequence[PhaseChange]) -> None:
        """History keeps every phase; the current phase only moves forward in event time, and
        a terminal phase is final."""

    async def record_catalog(self, entries: Sequence[CatalogEntry]) -> None:
        """Upsert catalog entries; an entry older than the stored one changes nothing."""

    async def record_clusters(self, records: Sequence[ClusterRecord]) -> None:
        """Upsert cluster records; one from an older report than the stored one changes
        nothing."""


Reader = Callable[[], AbstractAsyncContextManager[IntakeStore]]
"""Opens a store for reading (queries and fallbacks that change nothing)."""


class SqlIntakeStore(SqlStore):
    """Intake's store in PostgreSQL, on one connection (one transaction)."""

    async def usage(self, projects: Sequence[str]) -> dict[str, float]:
        return await quota.usage(self._conn, projects)

    async def judging(
        self, names: Sequence[tuple[str, str]], ids: Sequence[str], projects: Sequence[str]
    ) -> Judging:
        pairs = list(set(names))
        row = (
            await self._conn.execute(
                _JUDGING,
                {
                    "projects": [project for project, _ in pairs],
                    "names": [name for _, name in pairs],
                    "ids": list(set(ids)),
                    "wanted": list(set(projects)),
                },
            )
        ).one()
        views = [AssetView.model_validate(asset) for (asset,) in row.projects or ()]
        return Judging(
            taken={(project, name) for project, name in row.taken or ()},
            known=dict(row.known or ()),
            pools={name for (name,) in row.pools or ()},
            registry={cid: clusters.capabilities_of(cid, caps) for cid, caps in row.clusters or ()},
            quotas=quota.of_projects(views),
            rules=[AccessRule.model_validate(rule) for (rule,) in row.rules or ()],
        )

    async def projects(self, names: Sequence[str]) -> dict[str, ProjectInfo]:
        return await projection.projects(self._conn, names)

    async def assets(self, refs: Sequence[AssetRef]) -> list[AssetView]:
        return await projection.assets(self._conn, refs)

    async def action_targets(
        self, ids: Sequence[str], names: Sequence[tuple[str, str]]
    ) -> list[TargetRow]:
        wanted = []
        if ids:
            wanted.append(workloads.c.id.in_(sorted(set(ids))))
        if names:
            wanted.append(tuple_(workloads.c.project, workloads.c.name).in_(sorted(set(names))))
        if not wanted:
            return []
        live = case((LIVE, True), else_=False).label("live")
        stmt = (
            select(
                workloads.c.id,
                workloads.c.name,
                workloads.c.project,
                workloads.c.kind,
                workloads.c.cluster_id,
                workloads.c.created_by,
                workloads.c.phase,
                workloads.c.ref,
                live,
            )
            # Only received workloads have a cluster; a submission intake rejected has none.
            .where(workloads.c.cluster_id.is_not(None), or_(*wanted))
            .order_by(live.desc(), workloads.c.submitted_at.desc(), workloads.c.id)
        )
        return [
            TargetRow(
                workload_id=r.id,
                name=r.name or "",
                project=r.project or "",
                kind=r.kind or "",
                cluster_id=r.cluster_id,
                created_by=r.created_by,
                phase=r.phase,
                live=r.live,
                ref=r.ref,
            )
            for r in await self._conn.execute(stmt)
        ]

    async def record_workloads(self, rows: Sequence[WorkloadRow]) -> None:
        await self.insert_new(
            workloads,
            [
                {
                    "id": r.id,
                    "name": r.name,
                    "project": r.project,
                    "kind": r.kind,
                    "cluster_id": r.cluster_id,
                    "created_by": r.created_by,
                    "status": r.status,
                    "trace_id": r.trace_id,
                    "submission": r.submission,
                    "issues": r.issues,
                    "content_hash": r.content_hash,
                    "ref": r.ref,
                }
                for r in rows
            ],
        )
        await self.insert_new(
            workload_assets,
            [{"asset_id": a, "workload_id": r.id} for r in rows for a in r.assets],
        )

    async def approve(self, specs: Sequence[tuple[str, dict[str, Any]]]) -> None:
        if not specs:
            return
        # The first approval of a workload wins, as it would one statement per row.
        first: dict[str, dict[str, Any]] = {}
        for wid, spec in specs:
            first.setdefault(wid, spec)
        await self._conn.execute(
            _APPROVE,
            {"wids": list(first), "specs": [json.dumps(spec) for spec in first.values()]},
        )

    async def reject(self, issues: Sequence[tuple[str, list[dict[str, Any]]]]) -> None:
        if not issues:
            return
        await self._conn.execute(
            update(workloads)
            .where(workloads.c.id == bindparam("wid"))
            .values(status="rejected", issues=bindparam("issues")),
            [{"wid": wid, "issues": found} for wid, found in issues],
        )

    async def record_phases(self, changes: Sequence[PhaseChange]) -> None:
        if not changes:
            return
        await self.insert_all(
            phase_history,
            [
                {"workload_id": c.workload_id, "phase": c.phase, "message": c.message, "at": c.at}
                for c in changes
            ],
        )
        # One statement per round, each workload's n-th change that matters in round n: the
        # changes of one workload apply in order, each seeing what the one before it wrote (a
        # terminal phase stops the later ones), as they would one statement per row.
        kept = _phases_that_matter(changes)
        rounds = [
            [mine[n] for mine in kept.values() if n < len(mine)]
            for n in range(max(len(mine) for mine in kept.values()))
        ]
        for batch in rounds:
            await self._conn.execute(
                _PHASES,
                {
                    "wids": [c.workload_id for c in batch],
                    "phases": [c.phase for c in batch],
                    "messages": [c.message for c in batch],
                    "ats": [c.at for c in batch],
                    "running": [c.running_pods for c in batch],
                    "requested": [c.requested_pods for c in batch],
                },
            )

    async def record_catalog(self, entries: Sequence[CatalogEntry]) -> None:
        await self.upsert(
            catalog_entries,
            [
                {
                    "id": e.asset.id,
                    "kind": e.asset.kind,
                    "name": e.asset.name,
                    "asset": e.asset.model_dump(mode="json"),
                    "deleted": e.deleted,
                    "changed_at": e.changed_at,
                }
                for e in entries
            ],
            update=("kind", "name", "asset", "deleted", "changed_at"),
            newer=lambda new: catalog_entries.c.changed_at <= new.changed_at,
        )

    async def record_clusters(self, records: Sequence[ClusterRecord]) -> None:
        table = tables.clusters
        await self.upsert(
            table,
            [
                {
                    "cluster_id": r.clusterId,
                    "backend": r.backend,
                    "config": r.config.model_dump(mode="json"),
                    "node_pools": r.nodePools,
                    "gpus": r.gpus,
                    "capabilities": r.capabilities,
                    "extra": r.extra,
                    "reported_at": r.reportedAt,
                    "connected": r.connected,
                }
                for r in records
            ],
            update=clusters.RECORD_COLUMNS,
            newer=lambda new: table.c.reported_at <= new.reported_at,
        )


def reader(db: AsyncEngine) -> Reader:
    """Read-only stores on connections of ``db``."""

    @contextlib.asynccontextmanager
    async def read() -> AsyncIterator[IntakeStore]:
        async with db.connect() as conn:
            yield SqlIntakeStore(conn)

    return read
