"""``POST /api/v1/token``: an application's client id and secret exchanged for a token, as the
catalog's query (the same as ``berth login --application``). The one call without a bearer
token: it is how an application gets one."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from berth.api.bus import Bus
from berth.api.errors import BAD_REQUEST, ApiError, ErrorBody
from berth.contracts.applications import ApplicationTokenReply, ApplicationTokenRequest
from berth.contracts.subjects import RPC_CATALOG_APPLICATIONS_TOKEN

# Run:ai's grant of an application token, and OAuth's name for the same exchange.
GRANTS = ("app_token", "client_credentials")


class TokenRequest(BaseModel):
    """Run:ai's ``TokenRequest`` for an application. Run:ai's own examples spell the fields
    ``AppId``/``AppSecret`` and its schema ``appID``/``appSecret``; OAuth clients send
    ``clientId``/``clientSecret``: each is taken."""

    model_config = ConfigDict(populate_by_name=True)

    grantType: str = Field(description="app_token (or client_credentials).")
    appID: str | None = Field(
        default=None,
        validation_alias=AliasChoices("appID", "AppId", "appId", "clientId", "clientID"),
        description="The application's client id (its name).",
    )
    appSecret: str | None = Field(
        default=None,
        validation_alias=AliasChoices("appSecret", "AppSecret", "clientSecret"),
        description="The secret shown when the application was created.",
        repr=False,
    )


class TokenResponse(BaseModel):
    """Run:ai's ``TokenResponse``."""

    accessToken: str
    expiresIn: int | None = Field(default=None, description="berth: seconds the token is valid.")


def router(bus: Bus) -> APIRouter:
    api = APIRouter(prefix="/api/v1/token", tags=["tokens"])

    @api.post(
        "",
        summary="Create an application token.",
        responses={
            **BAD_REQUEST,
            401: {"model": ErrorBody, "description": "Unknown client id or wrong secret"},
            503: {"model": ErrorBody, "description": "Service unavailable"},
        },
    )
    async def grant_token(body: TokenRequest) -> TokenResponse:
        if body.grantType not in GRANTS:
            raise ApiError(
                400, "Bad request", f"grantType: only {' or '.join(GRANTS)} is supported here"
            )
        if not body.appID or not body.appSecret:
            raise ApiError(400, "Required parameter is missing", "appID and appSecret are required")
        reply = await bus.ask(
            RPC_CATALOG_APPLICATIONS_TOKEN,
            ApplicationTokenRequest(clientId=body.appID, clientSecret=body.appSecret),
            ApplicationTokenReply,
            "",
        )
        if reply.error or not reply.accessToken:
            raise ApiError(401, "Unauthorized", reply.error or "no token was issued")
        return TokenResponse(accessToken=reply.accessToken, expiresIn=reply.expiresIn)

    return api
