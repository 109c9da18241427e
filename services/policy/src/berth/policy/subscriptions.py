"""Everything policy listens to."""

from __future__ import annotations

from functools import partial

from berth.contracts.events import PolicyApprovedV1, PolicyRejectedV1, SubmissionReceivedV1
from berth.contracts.policy import (
    PolicyApplyRequest,
    PolicyChangedV1,
    PolicyChangeRejectedV1,
    PolicyChangeRequestedV1,
    PolicyDeleteRequest,
    PolicyEffectiveRequest,
    PolicyGetRequest,
    PolicyListRequest,
    PolicyPatchRequest,
)
from berth.contracts.queries import EvaluateRequest
from berth.contracts.roles import POLICY
from berth.contracts.subjects import (
    RPC_POLICY_APPLY,
    RPC_POLICY_DELETE,
    RPC_POLICY_EFFECTIVE,
    RPC_POLICY_EVALUATE,
    RPC_POLICY_GET,
    RPC_POLICY_LIST,
    RPC_POLICY_PATCH,
    RPC_POLICY_VALIDATE,
)
from berth.policy import handlers
from berth.policy.catalog_client import ProjectResolver
from berth.policy.store import CompiledCache, reader
from berth.policy.tables import access_rules
from berth.shared.access import subscriptions as access_rule_subscriptions
from berth.shared.service import Service, Subscription


def register(service: Service, resolve: ProjectResolver) -> None:
    cache = CompiledCache()
    read = reader(service.reads)
    writer = handlers.Writer(begin=service.unit_of_work, resolve=resolve)
    service.subscribe(
        Subscription(
            SubmissionReceivedV1,
            SubmissionReceivedV1.durable(POLICY),
            partial(handlers.evaluate_submissions, cache=cache),
            "evaluate",
        )
    )
    service.subscribe(
        Subscription(
            PolicyChangeRequestedV1,
            PolicyChangeRequestedV1.durable(POLICY),
            partial(handlers.change_policies, resolve=resolve),
            "change policies",
        )
    )
    service.respond(
        RPC_POLICY_EVALUATE,
        EvaluateRequest,
        partial(handlers.evaluate_query, read=read, cache=cache),
    )
    service.respond(
        RPC_POLICY_APPLY, PolicyApplyRequest, partial(handlers.apply_query, writer=writer)
    )
    service.respond(
        RPC_POLICY_VALIDATE, PolicyApplyRequest, partial(handlers.validate_query, writer=writer)
    )
    service.respond(
        RPC_POLICY_PATCH, PolicyPatchRequest, partial(handlers.patch_query, writer=writer)
    )
    service.respond(
        RPC_POLICY_DELETE, PolicyDeleteRequest, partial(handlers.delete_query, writer=writer)
    )
    service.respond(RPC_POLICY_GET, PolicyGetRequest, partial(handlers.get_query, read=read))
    service.respond(RPC_POLICY_LIST, PolicyListRequest, partial(handlers.list_query, read=read))
    service.respond(
        RPC_POLICY_EFFECTIVE,
        PolicyEffectiveRequest,
        partial(handlers.effective_query, read=read, cache=cache, resolve=resolve),
    )
    for subscription in access_rule_subscriptions(POLICY, access_rules):
        service.subscribe(subscription)
    service.publishes(PolicyApprovedV1, PolicyRejectedV1, PolicyChangedV1, PolicyChangeRejectedV1)
