"""Run:ai's error bodies and status codes, and how the services' refusals map onto them."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from berth.api.bus import Refused, Unavailable
from berth.contracts.events import Issue
from berth.contracts.issues import field_path, plain

# The one word of the access rules' refusals the gateway reads: what follows is the reason.
FORBIDDEN = "forbidden:"
NOT_COMPLIANT = "The workload request does not comply with the policy set by the administrator"


class ErrorBody(BaseModel):
    """Run:ai's ``Error``."""

    code: int = Field(ge=100, le=599)
    message: str
    details: str | None = None


class ComplianceIssue(BaseModel):
    field: str
    details: str


class SubmissionErrorBody(ErrorBody):
    """Run:ai's ``SubmissionError``: an ``Error`` with every issue named by its field."""

    complianceIssues: list[ComplianceIssue] = Field(default_factory=list)


class ApiError(Exception):
    def __init__(
        self, code: int, message: str, details: str | None = None, issues: Iterable[Issue] = ()
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.issues = [ComplianceIssue(field=i.field, details=i.details) for i in issues]

    def body(self) -> ErrorBody:
        if self.issues:
            return SubmissionErrorBody(
                code=self.code,
                message=self.message,
                details=self.details,
                complianceIssues=self.issues,
            )
        return ErrorBody(code=self.code, message=self.message, details=self.details)


def forbidden(texts: Iterable[str]) -> str | None:
    """The first refusal of the access rules among ``texts``, if any."""
    return next((t for t in texts if t.strip().lower().startswith(FORBIDDEN)), None)


def rejected(message: str, issues: list[Issue]) -> ApiError:
    """A rejection with named issues: 403 when an access rule refused it, else 400."""
    denial = forbidden([*(i.details for i in issues), message])
    if denial is not None:
        return ApiError(403, denial)
    return ApiError(400, message, "; ".join(f"{i.field}: {i.details}" for i in issues), issues)


def refused(exc: Refused) -> ApiError:
    if exc.code == "bad-request":
        return rejected(exc.message, exc.issues)
    denial = forbidden([exc.message])
    return ApiError(403, denial) if denial else ApiError(500, exc.message)


RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "Unauthorized"},
    403: {"model": ErrorBody, "description": "Forbidden"},
    503: {"model": ErrorBody, "description": "Service unavailable"},
}
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "The specified resource was not found"}
}
BAD_REQUEST: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "Bad request"}
}
BAD_SUBMISSION: dict[int | str, dict[str, object]] = {
    400: {"model": SubmissionErrorBody, "description": "Bad submission request"}
}


def install(app: object) -> None:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body().model_dump(exclude_none=True), status_code=exc.code)

    @app.exception_handler(Unavailable)
    async def unavailable(_request: Request, exc: Unavailable) -> JSONResponse:
        body = ErrorBody(code=503, message="Please try again in few minutes.", details=str(exc))
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503)

    @app.exception_handler(Refused)
    async def service_refused(_request: Request, exc: Refused) -> JSONResponse:
        error = refused(exc)
        return JSONResponse(error.body().model_dump(exclude_none=True), status_code=error.code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # The contract models' errors, named by field as intake names them; Run:ai answers a
        # malformed body with 400, not FastAPI's 422.
        issues = []
        for e in exc.errors():
            field = field_path(e["loc"], drop=("body",))
            issues.append(Issue(field=field, details=plain(e, field)))
        error = ApiError(
            400,
            "Bad request",
            "; ".join(f"{i.field}: {i.details}" for i in issues),
            issues,
        )
        return JSONResponse(error.body().model_dump(exclude_none=True), status_code=400)
