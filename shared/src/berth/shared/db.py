"""Async engine and the per-service schema: every service owns one PostgreSQL schema."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    LargeBinary,
    MetaData,
    Table,
    Text,
    event,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import BIGINT, JSONB, UUID
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def outbox_columns() -> list[Column[Any]]:
    """Rows waiting to be published; deleted once JetStream acknowledged them."""
    return [
        Column("id", BIGINT, primary_key=True, autoincrement=True),
        Column("subject", Text, nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    ]


def inbox_columns() -> list[Column[Any]]:
    """Ids of events already handled, so a redelivered event is acknowledged and skipped."""
    return [
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("processed_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    ]


def inbox_digest_column() -> Column[Any]:
    """sha256 of the message an event id was first handled with: the same id with another
    content is not a redelivery but a reused id, and is dead-lettered instead of skipped.
    Added after the first release (``migrations.add_inbox_digest``); empty for older rows."""
    return Column("digest", Text, nullable=True)


OUTBOX = "outbox"
INBOX = "processed_events"


def service_metadata(schema: str) -> MetaData:
    """Metadata of one service's schema, with the outbox and inbox tables every service has."""
    metadata = MetaData(schema=schema, naming_convention=NAMING_CONVENTION)
    Table(OUTBOX, metadata, *outbox_columns())
    Table(INBOX, metadata, *inbox_columns(), inbox_digest_column())
    return metadata


# A pooled connection idle for longer than this is checked before it is used again.
IDLE_PING_SECONDS = 1.0


def create_engine(
    database_url: str, *, pool_size: int = 5, idle_ping_seconds: float = IDLE_PING_SECONDS
) -> AsyncEngine:
    # Batches are committed by one task at a time per subscription; a small pool is plenty and
    # keeps the connection count low when six services share one server.
    engine = create_async_engine(database_url, pool_size=pool_size, max_overflow=pool_size)
    ping_when_idle(engine.sync_engine, idle_ping_seconds)
    return engine


def ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use when it was idle for ``idle_seconds`` or more, and
    replace it when the server has closed it (a restart, an idle timeout).

    SQLAlchemy's ``pool_pre_ping`` checks at every checkout: three round trips (begin, a query,
    rollback) before each transaction, more CPU than a batch's own statements. A connection in
    steady use needs no check: a server restart under load fails the transactions in flight
    anyway (an outage, retried), and the pool then replaces every connection it had."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out a new one.
            raise DisconnectionError(f"pooled connection unusable: {exc}") from exc


_IDLE_SINCE = "berth_idle_since"


async def ensure_schema(engine: AsyncEngine, schema: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
