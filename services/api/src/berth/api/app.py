"""The composition root of the api service: the FastAPI app over a bus."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Receive, Scope, Send

from berth.api import asset_creation, catalog, console, errors, policies, tokens, workloads
from berth.api.auth import DevIssuer
from berth.api.bus import Bus

TITLE = "berth API"
DESCRIPTION = (
    "Run:ai 2.18's REST API over berth: each call becomes the request event or query a UI "
    "sends on the bus. Every call but `POST /api/v1/token` (an application's secret exchanged "
    "for a token) needs `Authorization: Bearer <token>`, forwarded to the services unchanged."
)


class JsonBodies:
    """Every body the API takes is JSON, as in Run:ai's: one sent with another content type
    (``curl -d @body.json`` says form-urlencoded) is read as JSON all the same."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(("/api/", "/v1/")):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


def create_app(bus: Bus, *, timeout: float = 30.0, dev_issuer: DevIssuer | None = None) -> FastAPI:
    # No /docs or /redoc: their pages load scripts from a CDN, and berth serves every asset itself.
    app = FastAPI(
        title=TITLE,
        description=DESCRIPTION,
        version="2.18-berth.1",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(JsonBodies)
    errors.install(app)
    app.include_router(workloads.router(bus, timeout))
    app.include_router(policies.router(bus))
    app.include_router(catalog.router(bus))
    app.include_router(asset_creation.router(bus))
    app.include_router(tokens.router(bus))
    console.mount(app, bus, dev_issuer)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            # A body the contract models refuse is Run:ai's 400 (see errors.install), never 422.
            for operations in schema["paths"].values():
                for operation in operations.values():
                    operation["responses"].pop("422", None)
            components = schema.get("components", {}).get("schemas", {})
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
