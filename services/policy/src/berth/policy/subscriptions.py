"""Everything policy listens to."""

from __future__ import annotations

from berth.contracts.events import PolicyApprovedV1, PolicyRejectedV1, SubmissionReceivedV1
from berth.contracts.queries import EvaluateRequest
from berth.contracts.subjects import RPC_POLICY_EVALUATE
from berth.policy import handlers
from berth.shared.service import Service, Subscription


def register(service: Service) -> None:
    service.subscribe(
        Subscription(
            SubmissionReceivedV1, "policy-submissions", handlers.evaluate_submissions, "evaluate"
        )
    )
    service.respond(RPC_POLICY_EVALUATE, EvaluateRequest, handlers.evaluate_query)
    service.publishes(PolicyApprovedV1, PolicyRejectedV1)
