"""The web console: server-rendered pages (Jinja2) with a little script for live phases (SSE),
dry-run compliance issues beside their fields, and actions. Every asset is served from here.

Pages read through the same bus queries as the API, on behalf of the token the console keeps
in a cookie; the page's script calls the API itself with that token in the header."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from berth.api import cluster_side
from berth.api.auth import COOKIE, Caller, DevIssuer, caller_of, console_bearer
from berth.api.bus import Bus
from berth.api.errors import ApiError
from berth.api.views import COLLECTIONS, phase_of
from berth.contracts.catalog import AssetListReply, AssetListRequest, AssetView
from berth.contracts.events import ClusterRecord
from berth.contracts.lifecycle import refusal
from berth.contracts.phases import holds_quota
from berth.contracts.policy import EffectivePolicy, PolicyEffectiveRequest, PolicyReply
from berth.contracts.queries import (
    ClusterListQuery,
    ClusterListReply,
    ProjectLookupItem,
    ProjectLookupReply,
    ProjectLookupRequest,
    WorkloadListReply,
    WorkloadQuery,
    WorkloadReply,
    WorkloadView,
)
from berth.contracts.subjects import (
    RPC_CATALOG_ASSETS_LIST,
    RPC_CATALOG_PROJECTS_LOOKUP,
    RPC_CLUSTERS_LIST,
    RPC_POLICY_EFFECTIVE,
    RPC_WORKLOADS_GET,
    RPC_WORKLOADS_LIST,
)
from berth.contracts.workload import WORKLOAD_KINDS, requested_gpus

HERE = Path(__file__).parent
PREFIX = "/console"
ACTIONS = ("suspend", "resume", "delete")
# The log lines a workload's page shows (its ?tail= asks for more).
LOG_LINES = 200


@dataclass(frozen=True)
class Field:
    """One input of the submission form: its path in the spec (as policies and compliance
    issues name it), its label, and its input type."""

    path: str
    label: str
    type: str = "text"
    section: str = "General"


COMMON = (
    Field("image", "Image", section="Environment"),
    Field("imagePullPolicy", "Image pull policy", section="Environment"),
    Field("command", "Command", section="Environment"),
    Field("args", "Arguments", section="Environment"),
    Field("compute.gpuDevicesRequest", "GPU devices", "number", "Compute resource"),
    Field("compute.cpuCoreRequest", "CPU cores", "number", "Compute resource"),
    Field("compute.cpuMemoryRequest", "CPU memory", section="Compute resource"),
    Field("backoffLimit", "Backoff limit", "number", "Runtime"),
)
BY_KIND: dict[str, tuple[Field, ...]] = {
    "workspace": (),
    "training": (),
    "distributed": (
        Field("distributedFramework", "Framework (PyTorch, TF, MPI, XGBoost)", section="Workers"),
        Field("numWorkers", "Workers", "number", "Workers"),
    ),
    "inference": (
        Field("servingPort.container", "Serving port", "number", "Serving"),
        Field("autoscaling.minReplicas", "Min replicas", "number", "Serving"),
        Field("autoscaling.maxReplicas", "Max replicas", "number", "Serving"),
    ),
}
if set(BY_KIND) != set(WORKLOAD_KINDS):
    raise TypeError(f"the console's form fields {sorted(BY_KIND)} differ from {WORKLOAD_KINDS}")


def waterfall(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spans in start order with their offset and width in percent of the whole trace, and
    their depth in the span tree."""
    if not spans:
        return []
    start = min(int(s["start"]) for s in spans)
    end = max(int(s.get("end") or s["start"]) for s in spans)
    total = max(end - start, 1)
    by_id = {s["spanId"]: s for s in spans}

    def depth(span: dict[str, Any]) -> int:
        level, parent = 0, span.get("parentId")
        while parent in by_id and level < 50:
            level, parent = level + 1, by_id[parent].get("parentId")
        return level

    rows = []
    for span in sorted(spans, key=lambda s: int(s["start"])):
        begin, finish = int(span["start"]), int(span.get("end") or span["start"])
        rows.append(
            {
                "name": span["name"],
                "service": span.get("service") or "?",
                "depth": depth(span),
                "left": round(100 * (begin - start) / total, 2),
                "width": max(round(100 * (finish - begin) / total, 2), 0.3),
                "ms": round((finish - begin) / 1e6, 1),
                "status": span.get("status"),
            }
        )
    return rows


def mount(app: FastAPI, bus: Bus, dev_issuer: DevIssuer | None = None) -> None:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def caller(request: Request) -> Caller | None:
        try:
            return caller_of(console_bearer(request))
        except ApiError:
            return None

    def page(request: Request, name: str, who: Caller, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(
            request, name, {"user": who.actor.email, "kinds": COLLECTIONS, **context}
        )

    async def assets(who: Caller, kind: str, project: str | None = None) -> list[AssetView]:
        reply = await bus.ask(
            RPC_CATALOG_ASSETS_LIST,
            AssetListRequest(kind=kind, project=project),  # type: ignore[arg-type]
            AssetListReply,
            who.authorization,
        )
        return list(reply.assets)

    def login_redirect() -> Response:
        return RedirectResponse(f"{PREFIX}/login", status_code=303)

    @app.get(PREFIX, include_in_schema=False)
    @app.get(f"{PREFIX}/", include_in_schema=False)
    async def workloads_page(request: Request, project: str | None = None) -> Response:
        who = caller(request)
        if who is None:
            return login_redirect()
        reply = await bus.ask(
            RPC_WORKLOADS_LIST,
            WorkloadQuery(project=project or None, limit=200),
            WorkloadListReply,
            who.authorization,
        )
        rows = [row(w) for w in reply.workloads]
        projects = [a.name for a in await assets(who, "project")]
        return page(request, "workloads.html", who, rows=rows, project=project, projects=projects)

    def row(view: WorkloadView) -> dict[str, Any]:
        return {
            "id": view.workloadId,
            "name": view.name,
            "kind": view.kind,
            # A rejected submission may name a kind that does not exist.
            "collection": COLLECTIONS.get(view.kind, ""),
            "project": view.project,
            "phase": phase_of(view),
            "message": view.phaseMessage,
            "createdBy": view.createdBy,
            "submittedAt": view.submittedAt.strftime("%Y-%m-%d %H:%M:%S"),
            # Nothing acts on a rejected submission: it never became a workload.
            "allowed": {
                a: view.status != "rejected"
                and refusal(kind=view.kind, phase=view.phase, action=a) is None
                for a in ACTIONS
            },
        }

    @app.get(f"{PREFIX}/login", include_in_schema=False)
    async def login_page(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(
            request, "login.html", {"user": None, "dev_issuer": dev_issuer is not None}
        )

    @app.post(f"{PREFIX}/login", include_in_schema=False)
    async def dev_login(request: Request) -> Response:
        """The development issuer's login: a token for the email given (``berth login
        --user``), kept in the console's cookie."""
        if dev_issuer is None:
            raise ApiError(404, "Resource id not found.", "log in with a token: berth login")
        form = parse_qs((await request.body()).decode(errors="replace"))
        email = (form.get("email") or [""])[0].strip()
        groups = tuple(g.strip() for g in (form.get("groups") or [""])[0].split(",") if g.strip())
        if "@" not in email:
            return templates.TemplateResponse(
                request,
                "login.html",
                {"user": None, "dev_issuer": True, "error": "an email address, please"},
                status_code=400,
            )
        response = RedirectResponse(f"{PREFIX}/", status_code=303)
        # Not HttpOnly: the page's script sends it as the bearer token of its API calls.
        response.set_cookie(
            COOKIE, dev_issuer.mint(email, groups), path="/", samesite="strict", httponly=False
        )
        return response

    @app.get(f"{PREFIX}/new/{{collection}}", include_in_schema=False)
    async def new_page(request: Request, collection: str, project: str | None = None) -> Response:
        who = caller(request)
        if who is None:
            return login_redirect()
        kind = next((k for k, c in COLLECTIONS.items() if c == collection), None)
        if kind is None:
            raise ApiError(404, "Resource id not found.", f"no workload kind {collection}")
        project_assets = await assets(who, "project")
        projects = [a.name for a in project_assets]
        chosen = project or (projects[0] if projects else "")
        effective: EffectivePolicy | None = None
        if chosen:
            reply = await bus.ask(
                RPC_POLICY_EFFECTIVE,
                PolicyEffectiveRequest(type=kind, projectId=chosen),  # type: ignore[arg-type]
                PolicyReply,
                who.authorization,
            )
            effective = reply.effective
        clusters = await bus.ask(
            RPC_CLUSTERS_LIST, ClusterListQuery(), ClusterListReply, who.authorization
        )
        return page(
            request,
            "new.html",
            who,
            kind=kind,
            collection=collection,
            project=chosen,
            projects=projects,
            clusters=cluster_choices(
                clusters.clusters,
                next((a.spec.get("clusterId") for a in project_assets if a.name == chosen), None),
            ),
            fields=form_fields(kind, effective),
            templates=[a.name for a in await assets(who, "template", chosen or None)],
            environments=[a.name for a in await assets(who, "environment", chosen or None)],
            computes=[a.name for a in await assets(who, "compute", chosen or None)],
            datasources=[a.name for a in await assets(who, "datasource", chosen or None)],
        )

    @app.get(f"{PREFIX}/workloads/{{workload_id}}", include_in_schema=False)
    async def workload_page(
        request: Request, workload_id: str, pod: str | None = None, tail: int = LOG_LINES
    ) -> Response:
        who = caller(request)
        if who is None:
            return login_redirect()
        reply = await bus.ask(
            RPC_WORKLOADS_GET, WorkloadQuery(workloadId=workload_id), WorkloadReply,
            who.authorization,
        )  # fmt: skip
        if reply.workload is None:
            raise ApiError(404, "Resource id not found.", reply.error)
        view = reply.workload
        spans = waterfall(await bus.spans(view.traceId) if view.traceId else [])
        services = sorted({s["service"] for s in spans})
        for span in spans:
            span["color"] = services.index(span["service"]) % 6
        found = await bus.ask(
            RPC_CATALOG_PROJECTS_LOOKUP,
            ProjectLookupRequest(items=[ProjectLookupItem(project=view.project)]),
            ProjectLookupReply,
            who.authorization,
        )
        # The cluster's answers are asked together: a slow cluster delays the page once.
        (pods, pods_why), (manifests, render_why), log = await asyncio.gather(
            cluster_side.pods(bus, who, view),
            cluster_side.rendered(bus, who, view, found.projects.get(view.project)),
            cluster_side.logs(bus, who, view, pod, max(1, min(tail, 5000))),
        )
        return page(
            request,
            "workload.html",
            who,
            w=row(view),
            view=view,
            spans=spans,
            services=services,
            pods=pods,
            pods_why=pods_why,
            waiting=cluster_side.why_waiting(view, pods),
            manifests=manifests,
            render_why=render_why,
            log=log,
            on_cluster=cluster_side.on_cluster(view),
        )

    @app.get(f"{PREFIX}/catalog", include_in_schema=False)
    async def catalog_page(request: Request, project: str | None = None) -> Response:
        who = caller(request)
        if who is None:
            return login_redirect()
        kinds = ("department", "nodepool", "environment", "compute", "datasource")
        found = {k: await assets(who, k) for k in (*kinds, "credential", "template")}
        clusters = await bus.ask(
            RPC_CLUSTERS_LIST, ClusterListQuery(), ClusterListReply, who.authorization
        )
        live = await bus.ask(
            RPC_WORKLOADS_LIST, WorkloadQuery(limit=1000), WorkloadListReply, who.authorization
        )
        projects = await assets(who, "project")
        policies: dict[str, EffectivePolicy] = {}
        if project:
            for kind in WORKLOAD_KINDS:
                reply = await bus.ask(
                    RPC_POLICY_EFFECTIVE,
                    PolicyEffectiveRequest(type=kind, projectId=project),
                    PolicyReply,
                    who.authorization,
                )
                if reply.effective is not None:
                    policies[kind] = reply.effective
        return page(
            request,
            "catalog.html",
            who,
            assets=found,
            clusters=clusters.clusters,
            projects=quota_rows(projects, list(live.workloads)),
            project=project,
            policies=policies,
        )

    @app.get(f"{PREFIX}/events", include_in_schema=False)
    async def console_events(request: Request, project: str | None = None) -> Response:
        # The page's EventSource cannot send a header: the console's cookie stands for it.
        who = caller(request)
        if who is None:
            raise ApiError(401, "Unauthorized", "log in to the console first")
        from berth.api.workloads import event_stream

        return event_stream(bus, request, who, "*", project or None)


def cluster_choices(clusters: list[ClusterRecord], home: str | None) -> list[dict[str, Any]]:
    """The form's clusters, the project's own selected (else the first connected one): a
    disconnected cluster stays listed, marked, since its agent may be back soon."""
    selected = home if any(c.clusterId == home for c in clusters) else None
    if selected is None:
        selected = next((c.clusterId for c in clusters if c.connected), None)
    return [
        {"id": c.clusterId, "connected": c.connected, "selected": c.clusterId == selected}
        for c in clusters
    ]


def quota_rows(projects: list[AssetView], workloads: list[WorkloadView]) -> list[dict[str, Any]]:
    """Each project with its deserved GPUs (over its node pools) and the GPUs its workloads
    hold now, reckoned as the scheduler-adapter's admission does (contracts' quota facts)."""
    used: dict[str, float] = {}
    for w in workloads:
        if w.status != "rejected" and holds_quota(w.phase) and w.spec:
            used[w.project] = used.get(w.project, 0.0) + requested_gpus(w.spec)
    rows = []
    for p in projects:
        quota = p.spec.get("quota") or []
        rows.append(
            {
                "name": p.name,
                "department": p.spec.get("department") or "",
                "nodePools": ", ".join(p.spec.get("defaultNodePools") or []),
                "deserved": sum(float((q.get("gpu") or {}).get("deserved") or 0) for q in quota),
                "used": round(used.get(p.name, 0.0), 2),
            }
        )
    return rows


def form_fields(kind: str, effective: EffectivePolicy | None) -> list[dict[str, Any]]:
    """The form's inputs with the policy's defaults filled in, locked ones marked, and each
    rule's bounds and source shown."""
    defaults = {d.field: d for d in effective.defaults} if effective else {}
    rules = {r.field: r for r in effective.rules} if effective else {}
    out = []
    for field in (*COMMON, *BY_KIND[kind]):
        default = defaults.get(field.path)
        rule = rules.get(field.path)
        hints = []
        if rule is not None:
            for key in ("min", "max", "required", "options"):
                if rule.rule.get(key) is not None:
                    hints.append(f"{key} {rule.rule[key]}")
        out.append(
            {
                "path": field.path,
                "label": field.label,
                "type": field.type,
                "section": field.section,
                "value": "" if default is None else default.value,
                "locked": bool(rule is not None and rule.rule.get("canEdit") is False),
                "hint": ", ".join(hints),
                "source": str(rule.source) if rule is not None else "",
            }
        )
    return out
