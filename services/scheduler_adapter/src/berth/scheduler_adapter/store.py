"""The scheduler-adapter's state: the store port its handlers use, and its PostgreSQL adapter
(batched Core statements in the unit of work's transaction).

A workload's row is what was rendered for it (applied, or held until its project has room), the
intent last asked for (``desired``), and the phase last reported, with what its phase events
join: the trace and the causal chain of its approval.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from opentelemetry.context import Context
from sqlalchemy import Text, any_, bindparam, cast, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert

from berth.contracts.quota import QUOTA_HOLDING_PHASES
from berth.scheduler_adapter.tables import agent, workloads
from berth.shared.store import SqlStore
from berth.shared.telemetry import extract

HELD = "Held"
"""The intent of a workload held over its project's quota: nothing applied yet."""

FINISHED = ("Completed", "Failed", "Deleted")


@dataclass(frozen=True)
class AppliedWorkload:
    """One workload this agent rendered: its objects, intent and last reported phase."""

    workload_id: str
    ref: dict[str, Any]
    manifests: list[dict[str, Any]]
    desired: str = "Running"
    phase: str | None = None
    phase_message: str = ""
    traceparent: str | None = None
    correlation_id: str | None = None
    project: str | None = None
    gpus: float = 0.0

    @property
    def holds_quota(self) -> bool:
        """Admitted and not in a phase that gives the quota back."""
        return self.desired == "Running" and (
            self.phase is None or self.phase in QUOTA_HOLDING_PHASES
        )

    @property
    def unfinished(self) -> bool:
        """Should run and has not finished: what a restarted agent applies again."""
        return self.desired == "Running" and self.phase not in FINISHED

    @property
    def trace(self) -> Context:
        """The trace of its approval, which the events the cluster causes later continue."""
        return _stored_trace(self.traceparent) if self.traceparent else Context()


# Every phase event of a workload continues its stored trace: its header is parsed once while
# the workload runs, not at each event (a tenth of recording a phase). Contexts are immutable.
@lru_cache(maxsize=4096)
def _stored_trace(traceparent: str) -> Context:
    return extract({"traceparent": traceparent})


@dataclass(frozen=True)
class PhaseChange:
    workload_id: str
    phase: str | None
    message: str = ""
    desired: str | None = field(default=None)
    """The new intent, when it changes with the phase (an action)."""


class AdapterStore(Protocol):
    """What the handlers read and write, inside the transaction of their unit of work."""

    async def usage(self, projects: Iterable[str]) -> dict[str, float]:
        """GPUs of each project's admitted workloads that hold quota."""

    async def add(self, rows: Sequence[AppliedWorkload]) -> None:
        """Record newly rendered workloads; a workload already recorded keeps its row."""

    async def current(
        self, ids: Iterable[str], *, lock: bool = False, manifests: bool = True
    ) -> dict[str, AppliedWorkload]:
        """The rows of ``ids`` that exist; ``lock`` waits for (and blocks) concurrent intents.
        Without ``manifests`` the rows come with none (the largest column, which judging a
        phase does not need)."""

    async def set_phases(self, changes: Sequence[PhaseChange]) -> None:
        """Record phases (and intents, where given)."""

    async def held(self, projects: Iterable[str]) -> list[AppliedWorkload]:
        """The held workloads of ``projects``, oldest first (skipping those another transaction
        is admitting)."""

    async def admit(self, ids: Sequence[str]) -> None:
        """Held workloads become admitted: they should run."""

    async def unfinished(self) -> list[AppliedWorkload]:
        """Every workload that should run and has not finished."""

    async def claim_cluster(self, cluster_id: str) -> str:
        """Record ``cluster_id`` as this state's owner unless one is; the owner."""


def _row(row: Sequence[Any], columns: Sequence[str]) -> AppliedWorkload:
    """``row`` of a select of ``columns``: read by position, as a Row's attributes are looked
    up by name one at a time (and one it does not have, the manifests of a phase query, raises
    on the way to the default); the handlers read hundreds of rows per batch."""
    found = dict(zip(columns, row, strict=True))
    return AppliedWorkload(
        workload_id=found["workload_id"],
        ref=found["ref"],
        manifests=found.get("manifests") or [],
        desired=found["desired"],
        phase=found["phase"],
        phase_message=found["phase_message"] or "",
        traceparent=found["traceparent"],
        correlation_id=found["correlation_id"],
        project=found["project"],
        gpus=float(found["gpus"] or 0),
    )


_COLUMNS = (
    workloads.c.workload_id,
    workloads.c.ref,
    workloads.c.manifests,
    workloads.c.desired,
    workloads.c.phase,
    workloads.c.phase_message,
    workloads.c.traceparent,
    workloads.c.correlation_id,
    workloads.c.project,
    workloads.c.gpus,
)
_PHASE_COLUMNS = tuple(c for c in _COLUMNS if c is not workloads.c.manifests)
_NAMES = tuple(c.name for c in _COLUMNS)
_PHASE_NAMES = tuple(c.name for c in _PHASE_COLUMNS)


def _texts(name: str) -> Any:
    """A text-array parameter (``= ANY(:name)``, or a column of ``unnest``)."""
    return cast(bindparam(name, type_=ARRAY(Text())), ARRAY(Text()))


def _unnest(**columns: str) -> Any:
    """Rows given as one text-array parameter per column, as a table (``unnest(:a, :b, ..)``);
    ``columns`` maps each column to its parameter."""
    return (
        func.unnest(*(_texts(param) for param in columns.values()))
        .table_valued(*columns)
        .render_derived(name="given")
    )


# The statements of the hot paths are built once: built per call, each would be constructed,
# then traversed for its cache key (types included) on every batch before the cached
# compilation is found.
_USAGE = (
    select(workloads.c.project, func.sum(workloads.c.gpus))
    .where(
        workloads.c.project == any_(_texts("projects")),
        workloads.c.desired == "Running",
        or_(workloads.c.phase.is_(None), workloads.c.phase.in_(sorted(QUOTA_HOLDING_PHASES))),
    )
    .group_by(workloads.c.project)
)
_CURRENT = {
    manifests: select(*(_COLUMNS if manifests else _PHASE_COLUMNS)).where(
        # ``= ANY(array)``: one statement text whatever the count, prepared once; an IN list
        # is a new statement (parsed and planned anew) for every length a batch has.
        workloads.c.workload_id == any_(_texts("ids"))
    )
    for manifests in (True, False)
}
# Waits for an action being recorded on the same workloads to commit, so a snapshot is always
# judged against the latest intent; a fixed order keeps two batches from deadlocking on each
# other.
_CURRENT_LOCKED = {
    manifests: query.order_by(workloads.c.workload_id).with_for_update()
    for manifests, query in _CURRENT.items()
}
_plain = _unnest(wid="wids", phase="phases", message="messages")
_SET_PHASES = (
    update(workloads)
    .where(workloads.c.workload_id == _plain.c.wid)
    .values(phase=_plain.c.phase, phase_message=_plain.c.message)
)
_intents = _unnest(wid="wids", phase="phases", message="messages", intent="intents")
_SET_INTENTS = (
    update(workloads)
    .where(workloads.c.workload_id == _intents.c.wid)
    .values(desired=_intents.c.intent, phase=_intents.c.phase, phase_message=_intents.c.message)
)
_HELD = (
    select(*_COLUMNS)
    .where(workloads.c.project == any_(_texts("projects")), workloads.c.desired == HELD)
    .order_by(workloads.c.updated_at, workloads.c.workload_id)
    .with_for_update(skip_locked=True)
)
_ADMIT = (
    update(workloads)
    .where(workloads.c.workload_id == any_(_texts("ids")))
    .values(desired="Running", phase_message="")
)


def _latest(changes: Iterable[PhaseChange]) -> list[PhaseChange]:
    return list({c.workload_id: c for c in changes}.values())


class SqlAdapterStore(SqlStore):
    """The scheduler-adapter's store in PostgreSQL, on one connection (one transaction)."""

    async def usage(self, projects: Iterable[str]) -> dict[str, float]:
        names = sorted(set(projects))
        if not names:
            return {}
        rows = await self._conn.execute(_USAGE, {"projects": names})
        return {project: float(total or 0) for project, total in rows}

    async def add(self, rows: Sequence[AppliedWorkload]) -> None:
        await self.insert_new(
            workloads,
            [
                {
                    "workload_id": r.workload_id,
                    "ref": r.ref,
                    "manifests": r.manifests,
                    "desired": r.desired,
                    "phase": r.phase,
                    "phase_message": r.phase_message,
                    "traceparent": r.traceparent,
                    "correlation_id": r.correlation_id,
                    "project": r.project,
                    "gpus": r.gpus,
                }
                for r in rows
            ],
        )

    async def current(
        self, ids: Iterable[str], *, lock: bool = False, manifests: bool = True
    ) -> dict[str, AppliedWorkload]:
        query = (_CURRENT_LOCKED if lock else _CURRENT)[manifests]
        rows = await self._conn.execute(query, {"ids": list(ids)})
        names = _NAMES if manifests else _PHASE_NAMES
        return {row.workload_id: row for row in (_row(r, names) for r in rows)}

    async def set_phases(self, changes: Sequence[PhaseChange]) -> None:
        # One UPDATE over unnested arrays per kind of change, rather than an UPDATE per row
        # (executemany): a batch of snapshots changes hundreds of rows. A row joined twice
        # would take either value, so each statement is given each workload's latest change
        # (the plain ones first, as the rows were updated one by one).
        plain = _latest(c for c in changes if c.desired is None)
        if plain:
            await self._conn.execute(
                _SET_PHASES,
                {
                    "wids": [c.workload_id for c in plain],
                    "phases": [c.phase for c in plain],
                    "messages": [c.message for c in plain],
                },
            )
        intents = _latest(c for c in changes if c.desired is not None)
        if intents:
            await self._conn.execute(
                _SET_INTENTS,
                {
                    "wids": [c.workload_id for c in intents],
                    "phases": [c.phase for c in intents],
                    "messages": [c.message for c in intents],
                    "intents": [c.desired for c in intents],
                },
            )

    async def held(self, projects: Iterable[str]) -> list[AppliedWorkload]:
        names = sorted(set(projects))
        if not names:
            return []
        rows = await self._conn.execute(_HELD, {"projects": names})
        return [_row(r, _NAMES) for r in rows]

    async def admit(self, ids: Sequence[str]) -> None:
        if ids:
            await self._conn.execute(_ADMIT, {"ids": list(ids)})

    async def unfinished(self) -> list[AppliedWorkload]:
        rows = await self._conn.execute(
            select(*_COLUMNS).where(
                workloads.c.desired == "Running",
                or_(workloads.c.phase.is_(None), workloads.c.phase.not_in(FINISHED)),
            )
        )
        return [_row(r, _NAMES) for r in rows]

    async def claim_cluster(self, cluster_id: str) -> str:
        await self._conn.execute(
            insert(agent).values(id=1, cluster_id=cluster_id).on_conflict_do_nothing()
        )
        return str(await self._conn.scalar(select(agent.c.cluster_id).where(agent.c.id == 1)))
