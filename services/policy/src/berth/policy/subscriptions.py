"""Everything policy listens to."""

from __future__ import annotations

from berth.contracts.events import PolicyApprovedV1, PolicyRejectedV1, SubmissionReceivedV1
from berth.policy import handlers
from berth.shared.service import Service, Subscription


def register(service: Service) -> None:
    service.subscribe(
        Subscription(
            SubmissionReceivedV1, "policy-submissions", handlers.evaluate_submissions, "evaluate"
        )
    )
    service.publishes(PolicyApprovedV1, PolicyRejectedV1)
