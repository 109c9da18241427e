"""Dead letters: messages and outbox rows that could not be handled or published, kept in the
DEADLETTER stream with the reason, the original subject and headers, and the time, so that an
operator can list, show, replay or discard them (``berth deadletter``).

Subject: ``deadletter.<service>.v1.<original subject, made one token>``. A replay publishes the
payload again to the original subject with the original headers; its ``Nats-Msg-Id`` gets a
suffix so that the stream's duplicate window does not drop it, while the event id (and so every
consumer's inbox) stays the same: a dead-lettered message was never processed, so handling that
same event now is exactly what was missed.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from berth.contracts.subjects import deadletter

ORIGINAL_SUBJECT = "Berth-Original-Subject"
ORIGINAL_MSG_ID = "Berth-Original-Msg-Id"
REASON = "Berth-Reason"
SERVICE = "Berth-Service"
AT = "Berth-Dead-Lettered-At"
ORIGIN = "Berth-Origin"  # "consumer" (a message it received) or "outbox" (a row it could not send)
TRUNCATED = "Berth-Truncated"
# What a dead letter may carry of the original payload when the payload itself was the problem.
MAX_KEPT_PAYLOAD = 64 * 1024
_NOT_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


def token(subject: str) -> str:
    """``subject`` as one valid NATS token, whatever it contains (even nothing)."""
    return (_NOT_TOKEN.sub("_", subject) or "_")[:200]


def subject_for(service: str, original_subject: str) -> str:
    return f"{deadletter(service)}.{token(original_subject)}"


def headers_for(
    service: str,
    original_subject: str,
    headers: dict[str, str] | None,
    reason: str,
    *,
    origin: str,
    truncated: bool = False,
) -> dict[str, str]:
    kept = dict(headers or {})
    msg_id = kept.pop("Nats-Msg-Id", None)
    if msg_id:
        kept[ORIGINAL_MSG_ID] = msg_id
    # Raw when it is a valid subject (the usual case); escaped when it is not a header value.
    kept[ORIGINAL_SUBJECT] = original_subject.encode("unicode_escape").decode("ascii")
    kept[REASON] = json.dumps(reason[:2000])
    kept[SERVICE] = service
    kept[AT] = datetime.now(UTC).isoformat()
    kept[ORIGIN] = origin
    if truncated:
        kept[TRUNCATED] = "true"
    return kept


async def publish(
    js: JetStreamContext,
    service: str,
    original_subject: str,
    payload: bytes,
    headers: dict[str, str] | None,
    reason: str,
    *,
    origin: str,
) -> None:
    """Keep one dead letter; raises when the DEADLETTER stream cannot take it (an outage)."""
    truncated = len(payload) > MAX_KEPT_PAYLOAD
    await js.publish(
        subject_for(service, original_subject),
        payload[:MAX_KEPT_PAYLOAD] if truncated else payload,
        headers=headers_for(
            service, original_subject, headers, reason, origin=origin, truncated=truncated
        ),
    )


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as the stream holds it."""

    seq: int
    service: str
    original_subject: str
    reason: str
    at: str
    origin: str
    truncated: bool
    headers: dict[str, str]
    payload: bytes

    @classmethod
    def from_stored(cls, seq: int, headers: dict[str, str] | None, payload: bytes) -> DeadLetter:
        hdrs = dict(headers or {})
        return cls(
            seq=seq,
            service=hdrs.get(SERVICE, ""),
            original_subject=hdrs.get(ORIGINAL_SUBJECT, ""),
            reason=_loads(hdrs.get(REASON, '""')),
            at=hdrs.get(AT, ""),
            origin=hdrs.get(ORIGIN, "consumer"),
            truncated=hdrs.get(TRUNCATED) == "true",
            headers=hdrs,
            payload=payload,
        )

    def replay_headers(self, attempt: str) -> dict[str, str]:
        """The original headers, with a ``Nats-Msg-Id`` the duplicate window has not seen."""
        berth_headers = {ORIGINAL_SUBJECT, ORIGINAL_MSG_ID, REASON, SERVICE, AT, ORIGIN, TRUNCATED}
        out = {k: v for k, v in self.headers.items() if k not in berth_headers}
        original_id = self.headers.get(ORIGINAL_MSG_ID)
        if original_id:
            out["Nats-Msg-Id"] = f"{original_id}-replay-{attempt}"
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "service": self.service,
            "subject": self.original_subject,
            "reason": self.reason,
            "at": self.at,
            "origin": self.origin,
            "size": len(self.payload),
            "truncated": self.truncated,
        }


def _loads(raw: str) -> str:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


# --- operating on dead letters (``berth deadletter``) -------------------------------------------

STREAM = "DEADLETTER"


async def list_letters(
    js: JetStreamContext, service: str | None = None, *, limit: int = 1000
) -> list[DeadLetter]:
    """Dead letters, oldest first, of one service or of all."""
    subject = f"{deadletter(service)}.>" if service else "deadletter.*.v1.>"
    # A throwaway consumer: the server removes it by itself should we die before we do.
    sub = await js.pull_subscribe(
        subject,
        stream=STREAM,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, mem_storage=True, inactive_threshold=5),
    )
    try:
        info = await sub.consumer_info()
        total = min(info.num_pending or 0, limit)
        letters: list[DeadLetter] = []
        while len(letters) < total:
            msgs = await sub.fetch(min(total - len(letters), 256), timeout=5)
            letters += [
                DeadLetter.from_stored(m.metadata.sequence.stream, m.headers, m.data) for m in msgs
            ]
        return letters
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def get(js: JetStreamContext, seq: int) -> DeadLetter:
    try:
        msg = await js.get_msg(STREAM, seq)
    except NotFoundError:
        raise LookupError(f"no dead letter {seq}") from None
    if not msg.subject or not msg.subject.startswith("deadletter."):
        raise LookupError(f"no dead letter {seq}")
    return DeadLetter.from_stored(seq, msg.headers, msg.data or b"")


async def replay(js: JetStreamContext, seq: int) -> DeadLetter:
    """Publish the dead letter again to its original subject, then remove it."""
    letter = await get(js, seq)
    if letter.truncated:
        raise ValueError(f"dead letter {seq} kept only part of its payload; it cannot be replayed")
    tokens = letter.original_subject.split(".")
    if any(not t or any(c.isspace() or c in "*>" for c in t) for t in tokens):
        raise ValueError(f"dead letter {seq} has no subject to go back to: {letter.reason}")
    await js.publish(
        letter.original_subject,
        letter.payload,
        headers=letter.replay_headers(uuid.uuid4().hex[:12]),
        timeout=10,
    )
    await js.delete_msg(STREAM, seq)
    return letter


async def discard(js: JetStreamContext, seq: int) -> DeadLetter:
    letter = await get(js, seq)
    await js.delete_msg(STREAM, seq)
    return letter
