"""What ownership knows of the workloads an action names: intake's read model holds each
workload's creator, place and phase, so ownership asks it when an action is requested (rare)
instead of following every submission and phase itself (several per workload)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from berth.contracts.queries import ActionTargetsReply, ActionTargetsRequest, WorkloadName
from berth.contracts.subjects import RPC_WORKLOADS_ACTION_TARGETS
from berth.shared.bus import ask

ActionTargets = Callable[[Sequence[str], Sequence[tuple[str, str]]], Awaitable[ActionTargetsReply]]
"""The workloads with these ids and these (project, name)s, one question per batch of
requests. Raises ``TransientError`` while intake cannot answer, so the requests wait and come
back rather than being denied."""


def ask_intake(nc: Callable[[], Any], *, timeout: float) -> ActionTargets:
    """The question, over NATS request-reply (``nc``: a getter, since the service's connection
    only exists once it has started)."""

    async def targets(
        workload_ids: Sequence[str], names: Sequence[tuple[str, str]]
    ) -> ActionTargetsReply:
        if not workload_ids and not names:
            return ActionTargetsReply()
        return await ask(
            nc(),
            RPC_WORKLOADS_ACTION_TARGETS,
            ActionTargetsRequest(
                workloadIds=sorted(set(workload_ids)),
                names=[WorkloadName(project=p, name=n) for p, n in sorted(set(names))],
            ),
            ActionTargetsReply,
            timeout=timeout,
        )

    return targets
