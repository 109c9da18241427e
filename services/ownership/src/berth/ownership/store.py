"""Ownership's records: the store port the handlers use and its PostgreSQL adapter (batched
Core statements)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, tuple_

from berth.contracts.events import TERMINAL_PHASES
from berth.ownership.tables import clusters, owners, workload_phases
from berth.shared.store import SqlStore


@dataclass(frozen=True)
class Owner:
    """Who created a workload, in which cluster, and the workload as it was accepted."""

    workload_id: str
    cluster_id: str
    created_by: str
    ref: dict[str, Any]


@dataclass(frozen=True)
class Protection:
    """A cluster's ownership protection: as its agent last reported it and as administrators
    asked for it (either unknown until its first event), each with the time it was said."""

    cluster_id: str
    reported: bool | None = None
    reported_at: datetime | None = None
    desired: bool | None = None
    desired_at: datetime | None = None


@dataclass(frozen=True)
class Said:
    """One cluster's protection setting as one event says it, at that event's time."""

    cluster_id: str
    protection: bool
    at: datetime


@dataclass(frozen=True)
class Phase:
    workload_id: str
    phase: str
    at: datetime


class OwnershipStore(Protocol):
    """What the handlers read and write, inside the transaction of their unit of work."""

    async def add_owners(self, records: Sequence[Owner]) -> None:
        """Record creators; a workload keeps its first record (redeliveries change nothing)."""

    async def owners(self, workload_ids: Iterable[str]) -> dict[str, Owner]: ...

    async def owners_named(self, names: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Owner]:
        """The latest workload of each (project, name): a request from someone who may not
        read a workload names it, not its id."""

    async def record_reported(self, reports: Sequence[Said]) -> None:
        """The protection clusters report, one per cluster; an older one never replaces a
        newer."""

    async def record_desired(self, requests: Sequence[Said]) -> None:
        """The protection administrators asked for, one per cluster; an older one never
        replaces a newer."""

    async def protections(self) -> dict[str, Protection]:
        """Every cluster's protection, by cluster id."""

    async def record_phases(self, phases: Sequence[Phase]) -> None:
        """The latest phase of each workload (one per workload): an older phase never replaces
        a newer one, and a terminal phase is final."""

    async def phases(self, workload_ids: Iterable[str]) -> dict[str, str]: ...


class SqlOwnershipStore(SqlStore):
    """The ownership store in PostgreSQL, on one connection (one transaction)."""

    async def add_owners(self, records: Sequence[Owner]) -> None:
        await self.insert_new(
            owners,
            [
                {
                    "workload_id": r.workload_id,
                    "cluster_id": r.cluster_id,
                    "created_by": r.created_by,
                    "ref": r.ref,
                }
                for r in records
            ],
        )

    async def owners(self, workload_ids: Iterable[str]) -> dict[str, Owner]:
        ids = list(set(workload_ids))
        if not ids:
            return {}
        rows = await self._conn.execute(select(owners).where(owners.c.workload_id.in_(ids)))
        return {
            r.workload_id: Owner(r.workload_id, r.cluster_id, r.created_by, dict(r.ref or {}))
            for r in rows
        }

    async def owners_named(self, names: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Owner]:
        wanted = sorted(set(names))
        if not wanted:
            return {}
        key = tuple_(owners.c.ref["project"].astext, owners.c.ref["name"].astext)
        rows = await self._conn.execute(
            select(owners).where(key.in_(wanted)).order_by(owners.c.recorded_at)
        )
        return {
            (r.ref["project"], r.ref["name"]): Owner(
                r.workload_id, r.cluster_id, r.created_by, dict(r.ref or {})
            )
            for r in rows
        }

    async def record_reported(self, reports: Sequence[Said]) -> None:
        await self.upsert(
            clusters,
            [
                {"cluster_id": r.cluster_id, "protection": r.protection, "updated_at": r.at}
                for r in reports
            ],
            update=("protection", "updated_at"),
            # A late, older report must not undo a newer one.
            newer=lambda new: or_(
                clusters.c.updated_at.is_(None), clusters.c.updated_at <= new.updated_at
            ),
        )

    async def record_desired(self, requests: Sequence[Said]) -> None:
        await self.upsert(
            clusters,
            [
                {"cluster_id": r.cluster_id, "desired_protection": r.protection, "desired_at": r.at}
                for r in requests
            ],
            update=("desired_protection", "desired_at"),
            newer=lambda new: or_(
                clusters.c.desired_at.is_(None), clusters.c.desired_at <= new.desired_at
            ),
        )

    async def protections(self) -> dict[str, Protection]:
        return {
            r.cluster_id: Protection(
                r.cluster_id, r.protection, r.updated_at, r.desired_protection, r.desired_at
            )
            for r in await self._conn.execute(select(clusters))
        }

    async def record_phases(self, phases: Sequence[Phase]) -> None:
        await self.upsert(
            workload_phases,
            [{"workload_id": p.workload_id, "phase": p.phase, "at": p.at} for p in phases],
            update=("phase", "at"),
            # One comparison per terminal phase, not NOT IN: an expanding IN parameter cannot be
            # used with executemany (a batch of several workloads).
            newer=lambda new: and_(
                workload_phases.c.at <= new.at,
                *(workload_phases.c.phase != p for p in sorted(TERMINAL_PHASES)),
            ),
        )

    async def phases(self, workload_ids: Iterable[str]) -> dict[str, str]:
        ids = list(set(workload_ids))
        if not ids:
            return {}
        rows = await self._conn.execute(
            select(workload_phases).where(workload_phases.c.workload_id.in_(ids))
        )
        return {r.workload_id: r.phase for r in rows}
