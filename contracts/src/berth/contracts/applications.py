"""Applications: CI pipelines and upstream UIs acting as a service (Run:ai's "applications").

An application is a client id (its name) and a secret, shown once when it is created and kept
only as a hash by the catalog. The application exchanges them for a token
(``rpc.catalog.applications.token.v1``) signed by berth's application issuer, which every
service trusts: it then acts as the subject ``<name>`` of kind ``application`` (an actor with
email ``application:<name>``), with the rights access rules give that subject.
"""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from berth.contracts.envelope import Actor
from berth.contracts.queries import Query
from berth.contracts.spec.base import DNS_LABEL_PATTERN


class ApplicationView(Query):
    name: str = Field(description="The application's name, also its client id.")
    enabled: bool = True
    createdBy: str = Field(description="Who created it (the verified actor's email).")
    createdAt: AwareDatetime
    lastLogin: AwareDatetime | None = Field(
        default=None, description="When it last exchanged its secret for a token."
    )


class ApplicationCreateRequest(Query):
    name: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63)
    actor: Actor | None = Field(
        default=None, description="Filled by the catalog from the request's bearer token."
    )


class ApplicationCreatedReply(Query):
    application: ApplicationView | None = None
    clientId: str | None = None
    clientSecret: str | None = Field(
        default=None, description="Shown this once: the catalog keeps only its hash."
    )
    error: str | None = None


class ApplicationListRequest(Query):
    actor: Actor | None = Field(
        default=None, description="Filled by the catalog from the request's bearer token."
    )


class ApplicationListReply(Query):
    applications: list[ApplicationView] = Field(default_factory=list)
    error: str | None = None


class ApplicationDeleteRequest(Query):
    name: str
    actor: Actor | None = Field(
        default=None, description="Filled by the catalog from the request's bearer token."
    )


class ApplicationDeleteReply(Query):
    deleted: ApplicationView | None = None
    error: str | None = None


class ApplicationTokenRequest(Query):
    """The client credentials of an application (no bearer token: this is how one is got)."""

    clientId: str
    clientSecret: str = Field(repr=False)


class ApplicationTokenReply(Query):
    accessToken: str | None = None
    tokenType: str = "Bearer"
    expiresIn: int | None = Field(default=None, description="Seconds the token is valid.")
    error: str | None = None
