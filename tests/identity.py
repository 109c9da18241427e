"""Tokens for the tests: one development issuer per test session, trusted by every service the
tests start (in-process through the environment, or as processes of a suite), and clients that
carry a token proving the actor a test means.

A test that publishes a UI's request or asks a UI's query goes through ``publish`` / ``ask``
here: the token proves the request's own ``actor`` (or, for a query without one, ``TESTER``),
so what the services verify is what the test wrote."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from nats.aio.client import Client
from nats.js import JetStreamContext
from pydantic import BaseModel

from berth.cli import dev_issuer
from berth.contracts.envelope import Actor, Event
from berth.shared import bus

Q = TypeVar("Q", bound=BaseModel)

TESTER = Actor(email="tester@example.com")


def key_file() -> Path:
    return Path(os.environ[dev_issuer.KEY_ENV])


def token_for(who: Actor | str, groups: tuple[str, ...] = (), **options: Any) -> str:
    """A token of the session's development issuer for ``who``."""
    if isinstance(who, Actor):
        who, groups = who.email, who.groups
    return dev_issuer.mint(key_file(), who, groups, **options)


async def publish(js: JetStreamContext, event: Event, **kwargs: Any) -> None:
    """Publish ``event`` with a token proving its actor (``token=`` overrides)."""
    kwargs.setdefault("token", token_for(event.actor))
    await bus.publish(js, event, **kwargs)


async def ask(
    nc: Client,
    subject: str,
    query: BaseModel,
    reply: type[Q],
    *,
    timeout: float,
    token: str | None = None,
) -> Q:
    """Ask ``query`` with a token proving its actor (``TESTER`` when it has none)."""
    actor = getattr(query, "actor", None)
    return await bus.ask(
        nc,
        subject,
        query,
        reply,
        timeout=timeout,
        token=token or token_for(actor if isinstance(actor, Actor) else TESTER),
    )
