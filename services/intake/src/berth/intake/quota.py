"""Whether a workload fits its project's deserved GPU quota when it is submitted.

Intake only tells: the workload reference carries ``overQuota`` (and why), and the
scheduler-adapter holds an over-quota workload that does not allow it. Usage counts the GPUs of
the project's live workloads that intake has accepted and that hold quota
(``contracts.quota``: the rule the scheduler-adapter admits by).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from berth.contracts.catalog import AssetView
from berth.contracts.quota import QUOTA_HOLDING_PHASES, exceeds
from berth.contracts.workload import requested_gpus
from berth.intake.tables import LIVE, workloads


def gpus(submission: dict[str, Any]) -> float:
    return requested_gpus(submission)


def deserved(quota: Sequence[dict[str, Any]]) -> float:
    return sum(float((q.get("gpu") or {}).get("deserved") or 0) for q in quota)


def assess(project: str, requested: float, used: float, quota: float) -> tuple[bool, str | None]:
    reason = exceeds(project, requested, used, quota)
    return reason is not None, reason


def of_projects(views: Sequence[AssetView]) -> dict[str, float]:
    """Deserved GPUs of the projects among ``views`` that have a quota."""
    return {v.name: deserved(v.spec["quota"]) for v in views if v.spec.get("quota")}


async def usage(conn: AsyncConnection, names: Sequence[str]) -> dict[str, float]:
    if not names:
        return {}
    rows = await conn.execute(
        select(workloads.c.project, workloads.c.submission, workloads.c.effective_spec).where(
            workloads.c.project.in_(set(names)),
            LIVE,
            workloads.c.phase.is_(None) | workloads.c.phase.in_(sorted(QUOTA_HOLDING_PHASES)),
        )
    )
    used: dict[str, float] = {}
    for row in rows:
        used[row.project] = used.get(row.project, 0.0) + gpus(row.effective_spec or row.submission)
    return used
