"""``/api/v1/workloads``: Run:ai's workload endpoints, as the request events and queries a UI
sends (the same ones as ``berth <kind> submit``, ``berth list|describe``, ``berth delete``)."""

# No ``from __future__ import annotations``: each kind's endpoint takes its contract model as
# the body, and FastAPI reads that annotation at definition time.

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import uuid4

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from berth.api import cluster_side
from berth.api.auth import Caller, CallerDep
from berth.api.bus import Bus
from berth.api.errors import (
    BAD_REQUEST,
    BAD_SUBMISSION,
    NOT_COMPLIANT,
    NOT_FOUND,
    RESPONSES,
    ApiError,
    ErrorBody,
    rejected,
)
from berth.api.views import (
    COLLECTIONS,
    EventList,
    HistoryList,
    PodList,
    RunaiWorkload,
    WorkloadCreated,
    WorkloadList,
    created,
    events,
    history,
    phase_of,
    pod,
    runai_type,
    workload,
)
from berth.contracts.envelope import Event, RawEvent
from berth.contracts.events import (
    PolicyApprovedV1,
    PolicyRejectedV1,
    SubmissionReceivedV1,
    SubmissionRejectedV1,
    SubmissionRequestedV1,
    WorkloadActionAuthorizedV1,
    WorkloadActionData,
    WorkloadActionDeniedV1,
    WorkloadActionRequestedV1,
    WorkloadPhaseChangedV1,
)
from berth.contracts.lifecycle import refusal
from berth.contracts.queries import (
    DryRunReply,
    DryRunRequest,
    ProjectInfo,
    ProjectLookupItem,
    ProjectLookupReply,
    ProjectLookupRequest,
    WorkloadListReply,
    WorkloadQuery,
    WorkloadReply,
    WorkloadView,
)
from berth.contracts.subjects import (
    RPC_CATALOG_PROJECTS_LOOKUP,
    RPC_DRY_RUN,
    RPC_WORKLOADS_GET,
    RPC_WORKLOADS_LIST,
)
from berth.contracts.workload import SUBMISSION_CLASSES, SUSPENDABLE_KINDS, SubmissionBase

SOURCE = "/berth/api"
ACTIONS = ("delete", "suspend", "resume")
# Run:ai's filterBy fields the gateway can pass to intake's query; "==" only.
FILTERS = ("type", "projectName", "projectId", "phase", "clusterId")


# Workloads a count reads per list query (intake's largest page).
COUNT_PAGE = 1000


class Count(BaseModel):
    count: int


class Accepted(ErrorBody):
    """Run:ai's ``HttpResponse``: ``{"code": 202, "message": "Request has been accepted."}``."""


def router(bus: Bus, timeout: float) -> APIRouter:
    api = APIRouter(prefix="/api/v1/workloads", tags=["workloads"], responses=RESPONSES)

    async def view_of(caller: Caller, workload_id: str, kind: str | None = None) -> WorkloadView:
        reply = await bus.ask(
            RPC_WORKLOADS_GET, WorkloadQuery(workloadId=workload_id), WorkloadReply,
            caller.authorization,
        )  # fmt: skip
        if reply.workload is None or (kind is not None and reply.workload.kind != kind):
            raise ApiError(404, "Resource id not found.", reply.error)
        return reply.workload

    async def projects(caller: Caller, names: set[str]) -> dict[str, ProjectInfo]:
        if not names:
            return {}
        reply = await bus.ask(
            RPC_CATALOG_PROJECTS_LOOKUP,
            ProjectLookupRequest(items=[ProjectLookupItem(project=n) for n in sorted(names)]),
            ProjectLookupReply,
            caller.authorization,
        )
        return reply.projects

    @api.get(
        "/{workloadId}/history",
        summary="Get the workload's history (its phase updates).",
        responses=NOT_FOUND,
    )
    async def workload_history(workloadId: str, caller: CallerDep) -> HistoryList:
        return history(await view_of(caller, workloadId))

    def allowed(view: WorkloadView) -> dict[str, bool]:
        return {
            action: view.status != "rejected"
            and refusal(kind=view.kind, phase=view.phase, action=action) is None
            for action in ACTIONS
        }

    @api.get("", response_model=WorkloadList, summary="List workloads.")
    async def list_workloads(
        caller: CallerDep,
        filterBy: Annotated[
            list[str] | None,
            Query(description=f"field==value, for {', '.join(FILTERS)}; repeat to combine."),
        ] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        sortBy: Annotated[str | None, Query(description="createdAt (newest first).")] = None,
    ) -> WorkloadList:
        if sortBy not in (None, "createdAt"):
            raise ApiError(400, "Bad request", f"sortBy: only createdAt is supported; got {sortBy}")
        query = filtered(filterBy).model_copy(update={"offset": offset, "limit": limit})
        reply = await bus.ask(RPC_WORKLOADS_LIST, query, WorkloadListReply, caller.authorization)
        found = await projects(caller, {w.project for w in reply.workloads})
        return WorkloadList(
            workloads=[workload(w, found.get(w.project), allowed(w)) for w in reply.workloads],
            next=reply.nextOffset,
        )

    @api.get("/count", summary="Count workloads.")
    async def count_workloads(
        caller: CallerDep,
        filterBy: Annotated[
            list[str] | None,
            Query(description=f"field==value, for {', '.join(FILTERS)}; repeat to combine."),
        ] = None,
    ) -> Count:
        # Each page after the one before's cursor: an offset would have intake read every row
        # before it again, which grows with the square of the count.
        query = filtered(filterBy).model_copy(update={"limit": COUNT_PAGE})
        total = 0
        while True:
            reply = await bus.ask(
                RPC_WORKLOADS_LIST, query, WorkloadListReply, caller.authorization
            )
            total += len(reply.workloads)
            if reply.nextCursor is None or not reply.workloads:
                return Count(count=total)
            query = query.model_copy(update={"after": reply.nextCursor})

    @api.get(
        "/events",
        summary="berth: live events of every workload (of one project), as Server-Sent Events.",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def stream_all(
        request: Request,
        caller: CallerDep,
        projectName: str | None = None,
    ) -> StreamingResponse:
        return event_stream(bus, request, caller, "*", projectName)

    @api.get("/{workloadId}", summary="Get a workload.", responses=NOT_FOUND)
    async def get_workload(workloadId: str, caller: CallerDep) -> RunaiWorkload:
        view = await view_of(caller, workloadId)
        found = await projects(caller, {view.project})
        return workload(view, found.get(view.project), allowed(view))

    @api.get(
        "/{workloadId}/pods",
        summary="Get the workload's pods, as its cluster reports them now.",
        responses=NOT_FOUND,
    )
    async def workload_pods(
        workloadId: str,
        caller: CallerDep,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> PodList:
        view = await view_of(caller, workloadId)
        found, why = await cluster_side.pods(bus, caller, view)
        if why and not found:
            raise ApiError(503, "Please try again in few minutes.", why)
        page = found[offset : offset + limit]
        more = offset + limit if offset + limit < len(found) else None
        return PodList(pods=[pod(view, p) for p in page], next=more)

    @api.get(
        "/{workloadId}/events",
        response_model=EventList,
        response_model_exclude_none=True,
        summary="Get the workload's events (phase changes); live with Accept: text/event-stream.",
        responses={**NOT_FOUND, 200: {"content": {"text/event-stream": {}}}},
    )
    async def workload_events(workloadId: str, request: Request, caller: CallerDep) -> Any:
        view = await view_of(caller, workloadId)
        if "text/event-stream" in request.headers.get("accept", ""):
            return event_stream(bus, request, caller, view.workloadId, None)
        return EventList(events=events(view))

    for cls in SUBMISSION_CLASSES:
        kind = cls.model_fields["kind"].default
        _kind_routes(api, bus, timeout, cls, kind, COLLECTIONS[kind], view_of)
    return api


def filtered(filter_by: list[str] | None) -> WorkloadQuery:
    """Intake's list query for Run:ai's ``filterBy`` items (``==`` on the fields it keeps)."""
    query: dict[str, Any] = {}
    for item in filter_by or []:
        key, sep, value = item.partition("==")
        if not sep or key not in FILTERS or not value:
            raise ApiError(
                400,
                "Bad request",
                f"filterBy: {item!r}; supported: field==value with field one of "
                + ", ".join(FILTERS),
            )
        if key == "type":
            query.setdefault("kind", []).append(value.lower())
        elif key == "phase":
            query.setdefault("status", []).append(value)
        elif key == "clusterId":
            query["clusterId"] = value
        else:
            query["project"] = value
    return WorkloadQuery(**query)


SNAPSHOT_LIMIT = 200
"""The newest workloads a stream's snapshot covers: what the console's table shows."""
QUIET_SECONDS = 15.0
"""Seconds without an event after which a stream sends a keep-alive snapshot."""
RECHECK_SECONDS = 2.0
"""How long a stream trusts that a workload it may not read stays so: a new workload's first
event can reach the gateway before intake's read model has recorded it."""


def event_stream(
    bus: Bus, request: Request, caller: Caller, subject_id: str, project: str | None
) -> StreamingResponse:
    """The events UIs follow about ``subject_id`` ("*": every workload, of ``project`` when
    given) as Server-Sent Events, one ``event: <type>`` each, until the client goes.

    Only workloads the caller may read are streamed: intake's read model, asked with the
    caller's token, decides (as it does for a list). Each stream starts with an ``event:
    snapshot`` of the current phases (and sends one again after each quiet spell): a client
    that rendered a page, then connected, would otherwise miss what changed in between."""

    async def snapshot() -> list[WorkloadView]:
        if subject_id != "*":
            reply = await bus.ask(
                RPC_WORKLOADS_GET, WorkloadQuery(workloadId=subject_id), WorkloadReply,
                caller.authorization,
            )  # fmt: skip
            return [reply.workload] if reply.workload is not None else []
        page = await bus.ask(
            RPC_WORKLOADS_LIST,
            WorkloadQuery(project=project, limit=SNAPSHOT_LIMIT),
            WorkloadListReply,
            caller.authorization,
        )
        return list(page.workloads)

    readable: dict[str, bool | float] = {}  # id -> True, or when "not readable" was learned

    async def may_read(workload_id: str) -> bool:
        known = readable.get(workload_id)
        if known is True:
            return True
        if known is not None and time.monotonic() - known < RECHECK_SECONDS:
            return False
        reply = await bus.ask(
            RPC_WORKLOADS_GET, WorkloadQuery(workloadId=workload_id), WorkloadReply,
            caller.authorization,
        )  # fmt: skip
        found = reply.workload is not None and project in (None, reply.workload.project)
        readable[workload_id] = True if found else time.monotonic()
        return found

    async def snapshot_frame() -> bytes:
        views = await snapshot()
        for view in views:
            readable[view.workloadId] = True
        items = [
            {"subject": v.workloadId, "phase": phase_of(v), "message": v.phaseMessage}
            for v in views
        ]
        return f"event: snapshot\ndata: {json.dumps({'workloads': items})}\n\n".encode()

    async def stream() -> AsyncIterator[bytes]:
        async with bus.watch(subject_id) as queue:
            # Subscribed first, then read: whatever changes after the read arrives as an event.
            yield await snapshot_frame()
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), QUIET_SECONDS)
                except TimeoutError:
                    yield await snapshot_frame()
                    continue
                if subject_id == "*" and not await may_read(event.subject):
                    continue
                data = event.model_dump(mode="json")
                kind = event.TYPE.removeprefix("berth.")
                yield f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _kind_routes(
    api: APIRouter,
    bus: Bus,
    timeout: float,
    cls: type[SubmissionBase],
    kind: str,
    collection: str,
    view_of: Callable[[Caller, str, str | None], Awaitable[WorkloadView]],
) -> None:
    what = runai_type(kind).lower()

    async def create(
        body: cls,  # type: ignore[valid-type]
        request: Request,
        caller: CallerDep,
        dryRun: Annotated[
            bool, Query(description="berth: validate, apply policy and render; create nothing.")
        ] = False,
    ) -> Any:
        # The body as sent (the contract model validated it), with its kind: intake resolves
        # and validates it again, as it does for every UI.
        submission = {**(await request.json()), "kind": kind}
        if dryRun:
            reply = await bus.ask(
                RPC_DRY_RUN,
                DryRunRequest(actor=caller.actor, submission=submission),
                DryRunReply,
                caller.authorization,
            )
            if reply.issues:
                raise rejected(NOT_COMPLIANT, list(reply.issues))
            given: SubmissionBase = body
            return WorkloadCreated(
                name=given.name,
                requestedName=given.name,
                workloadId="",
                projectId=given.projectId,
                clusterId=given.clusterId or "",
                createdBy=caller.actor.email,
                createdAt=time_now(),
                spec=(reply.effectiveSpec or {}).get("spec", {}),
            )
        return await submit(bus, caller, submission, timeout)

    api.add_api_route(
        f"/{collection}",
        create,
        methods=["POST"],
        response_model=WorkloadCreated,
        summary=f"Create a {what}.",
        responses=BAD_SUBMISSION,
        name=f"create_{kind}",
    )

    async def get_one(workloadId: str, caller: CallerDep) -> WorkloadCreated:
        return created(await view_of(caller, workloadId, kind))

    api.add_api_route(
        f"/{collection}/{{workloadId}}",
        get_one,
        methods=["GET"],
        response_model=WorkloadCreated,
        summary=f"Get a {what}.",
        responses=NOT_FOUND,
        name=f"get_{kind}",
    )

    actions = ["delete", *(("suspend", "resume") if kind in SUSPENDABLE_KINDS else ())]
    for action in actions:
        _action_route(api, bus, timeout, kind, collection, action, view_of)


def _action_route(
    api: APIRouter,
    bus: Bus,
    timeout: float,
    kind: str,
    collection: str,
    action: str,
    view_of: Callable[[Caller, str, str | None], Awaitable[WorkloadView]],
) -> None:
    async def act(workloadId: str, caller: CallerDep) -> Any:
        view = await view_of(caller, workloadId, kind)
        if view.status in ("Deleted", "rejected"):
            raise ApiError(404, "Resource id not found.", f"the workload is {view.status}")
        await request_action(bus, caller, view, action, timeout)
        if action == "delete":
            return Response(status_code=204)
        return Accepted(code=202, message="Request has been accepted.")

    summary = f"{action.capitalize()} a {runai_type(kind).lower()}."
    path = f"/{collection}/{{workloadId}}"
    responses = {**NOT_FOUND, **BAD_REQUEST}
    if action == "delete":
        api.add_api_route(
            path, act, methods=["DELETE"], status_code=204, response_class=Response,
            response_model=None, summary=summary, responses=responses, name=f"{action}_{kind}",
        )  # fmt: skip
    else:
        api.add_api_route(
            f"{path}/{action}", act, methods=["POST"], status_code=202, response_model=Accepted,
            summary=summary, responses=responses, name=f"{action}_{kind}",
        )  # fmt: skip


def time_now() -> datetime:
    return datetime.now(UTC)


async def submit(bus: Bus, caller: Caller, submission: dict[str, Any], timeout: float) -> Any:
    """Publish the submission event and answer as intake, then policy, decide."""
    workload_id = str(uuid4())
    event = RawEvent(
        source=SOURCE,
        type=SubmissionRequestedV1.TYPE,
        version=SubmissionRequestedV1.VERSION,
        subject=workload_id,
        actor=caller.actor,
        data={"submission": submission},
    )
    received: SubmissionReceivedV1 | None = None
    async with bus.watch(workload_id) as queue:
        await bus.publish(
            event, SubmissionRequestedV1.nats_subject(workload_id), caller.authorization
        )
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                answer: Event = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                break
            if isinstance(answer, SubmissionRejectedV1):
                raise rejected("Bad submission request", list(answer.data.issues))
            if isinstance(answer, PolicyRejectedV1):
                raise rejected(NOT_COMPLIANT, list(answer.data.complianceIssues))
            if isinstance(answer, SubmissionReceivedV1):
                received = answer
            if isinstance(answer, PolicyApprovedV1):
                ref = answer.data.workload
                return _created(ref, answer.data.effectiveSpec.model_dump(mode="json"), submission)
            if isinstance(answer, WorkloadPhaseChangedV1):
                continue
    if received is None:
        raise ApiError(503, "Please try again in few minutes.", "intake did not answer in time")
    # Intake took it; policy has not answered yet: the workload exists and is being created.
    return _created(
        received.data.workload, received.data.submission.model_dump(mode="json"), submission
    )


def _created(ref: Any, effective: dict[str, Any], submission: dict[str, Any]) -> WorkloadCreated:
    return WorkloadCreated(
        name=ref.name,
        requestedName=str(submission.get("name", ref.name)),
        workloadId=ref.workloadId,
        projectId=ref.project,
        departmentId=ref.department,
        clusterId=ref.clusterId,
        createdBy=ref.createdBy,
        createdAt=time_now(),
        actualPhase="Creating",
        spec=effective.get("spec", {}),
    )


async def request_action(
    bus: Bus, caller: Caller, view: WorkloadView, action: str, timeout: float
) -> None:
    """Publish the action request; ownership authorizes it or denies it with the reason."""
    event = WorkloadActionRequestedV1(
        source=SOURCE,
        subject=view.workloadId,
        actor=caller.actor,
        data=WorkloadActionData(action=action, name=view.name, project=view.project),  # type: ignore[arg-type]
    )
    async with bus.watch(view.workloadId) as queue:
        await bus.publish(event, event.subject_name, caller.authorization)
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                answer = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                break
            if isinstance(answer, WorkloadActionDeniedV1) and answer.data.action == action:
                # Run:ai answers an action it refuses with 403 and the reason.
                raise ApiError(403, answer.data.reason)
            if isinstance(answer, WorkloadActionAuthorizedV1) and answer.data.action == action:
                return
    raise ApiError(503, "Please try again in few minutes.", "ownership did not answer in time")
