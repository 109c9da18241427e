"""Policy handlers."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert

from berth.contracts.events import (
    PolicyApprovedData,
    PolicyApprovedV1,
    PolicyRejectedData,
    PolicyRejectedV1,
    SubmissionReceivedV1,
)
from berth.contracts.queries import EvaluateReply, EvaluateRequest
from berth.policy.evaluation import evaluate
from berth.policy.tables import evaluations
from berth.shared.consumer import Incoming, Unit

SOURCE = "/berth/policy"


async def evaluate_submissions(items: list[Incoming[SubmissionReceivedV1]], unit: Unit) -> None:
    rows: list[dict[str, Any]] = []
    for item in items:
        workload = item.event.data.workload
        effective, issues = evaluate(item.event.data.submission)
        item.span.set_attribute("berth.outcome", "rejected" if issues else "approved")
        rows.append(
            {
                "workload_id": workload.workloadId,
                "outcome": "rejected" if issues else "approved",
                "effective_spec": effective.model_dump(mode="json", exclude_none=True),
                "issues": [i.model_dump() for i in issues],
            }
        )
        event: PolicyApprovedV1 | PolicyRejectedV1
        if issues:
            event = PolicyRejectedV1(
                source=SOURCE,
                **item.event.chain(),
                data=PolicyRejectedData(workload=workload, complianceIssues=issues),
            )
        else:
            event = PolicyApprovedV1(
                source=SOURCE,
                **item.event.chain(),
                data=PolicyApprovedData(workload=workload, effectiveSpec=effective),
            )
        unit.emit(event, cause=item)
    await unit.conn.execute(insert(evaluations).on_conflict_do_nothing(), rows)


async def evaluate_query(request: EvaluateRequest) -> EvaluateReply:
    """The same evaluation, for a dry run: nothing is recorded."""
    effective, issues = evaluate(request.submission)
    return EvaluateReply(effectiveSpec=effective, complianceIssues=issues)
