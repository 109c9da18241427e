"""Ownership's records: the store port the handlers use and its PostgreSQL adapter (batched
Core statements)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import or_, select

from berth.ownership.tables import clusters
from berth.shared.store import SqlStore


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


class OwnershipStore(Protocol):
    """What the handlers read and write, inside the transaction of their unit of work."""

    async def record_reported(self, reports: Sequence[Said]) -> None:
        """The protection clusters report, one per cluster; an older one never replaces a
        newer."""

    async def record_desired(self, requests: Sequence[Said]) -> None:
        """The protection administrators asked for, one per cluster; an older one never
        replaces a newer."""

    async def protections(self) -> dict[str, Protection]:
        """Every cluster's protection, by cluster id."""


class SqlOwnershipStore(SqlStore):
    """The ownership store in PostgreSQL, on one connection (one transaction)."""

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
