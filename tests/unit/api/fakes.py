"""A bus that answers as scripted: queries by subject, events after each publish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import jwt
from pydantic import BaseModel

from berth.contracts.envelope import Event


def token(email: str = "alice@example.com", groups: tuple[str, ...] = ()) -> str:
    # The gateway reads the claims without verifying them (the services verify the token).
    return jwt.encode({"sub": email, "email": email, "groups": list(groups)}, "k" * 32, "HS256")


def auth(email: str = "alice@example.com") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(email)}"}


class FakeBus:
    def __init__(self) -> None:
        self.replies: dict[str, Callable[[Any], BaseModel]] = {}
        self.answers: Callable[[Event], list[Event]] = lambda _event: []
        self.published: list[tuple[Event, str, str]] = []
        self.asked: list[tuple[str, BaseModel, str]] = []
        self.queues: list[asyncio.Queue[Event]] = []

    async def ask(
        self,
        subject: str,
        query: BaseModel,
        reply: type[Any],
        authorization: str,
        *,
        timeout: float | None = None,
    ) -> Any:
        del timeout
        self.asked.append((subject, query, authorization))
        answer = self.replies[subject](query)
        return (
            reply.model_validate(answer.model_dump()) if not isinstance(answer, reply) else answer
        )

    async def publish(self, event: Event, subject: str, authorization: str) -> None:
        self.published.append((event, subject, authorization))
        for answer in self.answers(event):
            for queue in self.queues:
                queue.put_nowait(answer)

    @asynccontextmanager
    async def watch(self, subject_id: str) -> AsyncIterator[asyncio.Queue[Event]]:
        del subject_id
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self.queues.append(queue)
        try:
            yield queue
        finally:
            self.queues.remove(queue)

    async def spans(self, trace_id: str) -> list[dict[str, Any]]:
        del trace_id
        return []
