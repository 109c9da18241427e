"""The event envelope every berth event travels in.

CloudEvents 1.0 attributes (``id``, ``source``, ``type``, ``specversion``, ``time``, ``subject``)
plus berth extensions: ``version`` (the major version of ``data``), ``actor``, ``correlationid``
and ``causationid``. W3C trace context is not part of the body: it travels in the NATS headers
(``traceparent``/``tracestate``) so that tracing works without decoding the payload.
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from berth.contracts.roles import FREE_SOURCE, Consumer, role_of_source
from berth.contracts.spec.base import require_fields
from berth.contracts.subjects import subject_token_problem


def utcnow() -> datetime:
    return datetime.now(UTC)


class Actor(BaseModel):
    """Who caused the event: a user (email and IdP groups) or a service (``system:<name>``)."""

    model_config = ConfigDict(frozen=True)

    email: str = Field(description="The user's email, or system:<service> for automatic actions.")
    groups: tuple[str, ...] = Field(default=(), description="The user's identity-provider groups.")
    subject: str | None = Field(
        default=None,
        description="The verified subject: the token's sub (a user's id at the identity "
        "provider, an application's name). Unset for services and on requests, where the "
        "consuming service fills it from the bearer token.",
    )
    kind: Literal["user", "application"] | None = Field(
        default=None,
        description="What the verified subject is: a person or an application. Unset for services.",
    )

    @classmethod
    def system(cls, service: str) -> Actor:
        return cls(email=f"system:{service}")


class Event(BaseModel):
    """Base of every event; concrete events fix ``type``, ``version`` and ``data``."""

    # ``type`` and ``version`` have defaults so producers need not pass them, but every message
    # carries them and none decodes without them: the schemas say they are required.
    model_config = ConfigDict(
        frozen=True, extra="ignore", json_schema_extra=require_fields("type", "version")
    )

    # Filled by each concrete class; registry key and NATS subject are derived from them.
    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 0
    registry: ClassVar[dict[tuple[str, int], builtins.type[Event]]] = {}
    # Who may publish this type and who consumes it (see berth.contracts.roles); the NATS
    # permissions of every role are generated from these.
    PRODUCERS: ClassVar[tuple[str, ...]] = ()
    CONSUMERS: ClassVar[tuple[Consumer, ...]] = ()

    specversion: str = Field(default="1.0", description="CloudEvents spec version.")
    id: UUID = Field(default_factory=uuid4, description="Unique event id; also Nats-Msg-Id.")
    source: str = Field(description="URI-reference of the emitting component, e.g. /berth/intake.")
    # Concrete events fix both (see __pydantic_init_subclass__); RawEvent takes them as given.
    type: str = Field(default="", description="Event type, e.g. berth.submission.received.")
    version: int = Field(default=0, description="Major version of the data shape.")
    time: AwareDatetime = Field(default_factory=utcnow, description="When it happened.")
    subject: str = Field(description="The workload id (or cluster / asset id) the event is about.")
    datacontenttype: str = Field(default="application/json")
    actor: Actor = Field(description="Who caused it.")
    correlationid: UUID | None = Field(
        default=None, description="Id of the first event of the causal chain."
    )
    causationid: UUID | None = Field(default=None, description="Id of the event that caused it.")
    data: Any = None

    @field_validator("subject")
    @classmethod
    def _subject_is_one_token(cls, value: str) -> str:
        # The subject id becomes the last token of the NATS subject of this event and of every
        # event it causes: anything else could never be published.
        if problem := subject_token_problem(value):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _type_matches_class(self) -> Event:
        # A message of another type must not decode as this one just because the shapes fit.
        if self.TYPE and (self.type, self.version) != (self.TYPE, self.VERSION):
            raise ValueError(
                f"expected {self.TYPE} v{self.VERSION}, got {self.type} v{self.version}"
            )
        if not self.type:
            raise ValueError("type is required")
        return self

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.TYPE:
            Event.registry[(cls.TYPE, cls.VERSION)] = cls

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.TYPE:
            # Defaults for the fixed attributes, so producers only pass what varies.
            cls.model_fields["type"].default = cls.TYPE
            cls.model_fields["version"].default = cls.VERSION
            cls.model_rebuild(force=True)

    @classmethod
    def subject_prefix(cls) -> str:
        """``submission.received.v1`` for ``berth.submission.received`` version 1."""
        return f"{cls.TYPE.removeprefix('berth.')}.v{cls.VERSION}"

    @classmethod
    def nats_subject(cls, subject_id: str) -> str:
        return f"{cls.subject_prefix()}.{subject_id}"

    @property
    def subject_name(self) -> str:
        """The NATS subject this event is published on."""
        return self.nats_subject(self.subject)

    @classmethod
    def durable(cls, role: str, cluster: str | None = None) -> str:
        """The durable consumer name ``role`` consumes this type under (declared in CONSUMERS)."""
        for consumer in cls.CONSUMERS:
            if role in consumer.roles and consumer.durable is not None:
                return consumer.durable_for(cluster) if cluster else consumer.durable
        raise LookupError(f"{role} declares no durable consumer of {cls.TYPE} v{cls.VERSION}")

    @classmethod
    def source_problem(cls, source: str) -> str | None:
        """Why ``source`` may not have emitted this type, or None when it may.

        Events produced by UIs carry a source of their own choosing: those are not checked."""
        if not cls.PRODUCERS or FREE_SOURCE.intersection(cls.PRODUCERS):
            return None
        if role_of_source(source) in cls.PRODUCERS:
            return None
        return (
            f"source {source!r} may not emit {cls.TYPE} v{cls.VERSION} "
            f"(emitted by: {', '.join(cls.PRODUCERS)})"
        )

    @classmethod
    def refused(cls, request: Event, reason: str, *, source: str, actor: Actor) -> Event | None:
        """The answer to a request of this type whose sender could not be authenticated: the
        request's own rejection event (``source`` and ``actor`` name the refusing service),
        or None when the type has none (the request is then dead-lettered with the reason).
        ``request`` may be a ``RawEvent`` whose ``data`` is still a dict."""
        return None

    def refusal_envelope(self, *, source: str, actor: Actor) -> dict[str, Any]:
        """Envelope fields of the answer refusing this request: its subject and correlation,
        from the refusing service (the sender's claimed actor is not known to be true)."""
        return {**self.chain(), "source": source, "actor": actor}

    def data_field(self, name: str, default: Any = None) -> Any:
        """A field of ``data``, whether decoded into its model or kept as a dict."""
        if isinstance(self.data, dict):
            return self.data.get(name, default)
        return getattr(self.data, name, default)

    def chain(self) -> dict[str, Any]:
        """Envelope fields for an event caused by this one: same subject, actor and correlation."""
        return {
            "subject": self.subject,
            "actor": self.actor,
            "correlationid": self.correlationid or self.id,
            "causationid": self.id,
        }


class RawEvent(Event):
    """An envelope whose ``data`` is kept undecoded, for consumers that validate it themselves."""

    data: dict[str, Any] = Field(default_factory=dict)


def event_class(type_: str, version: int) -> builtins.type[Event]:
    try:
        return Event.registry[(type_, version)]
    except KeyError:
        raise LookupError(f"unknown event type {type_} v{version}") from None
