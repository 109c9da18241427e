"""Async engine and the per-service schema: every service owns one PostgreSQL schema."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Column, DateTime, LargeBinary, MetaData, Table, Text, event, func, text
from sqlalchemy.dialects.postgresql import BIGINT, JSONB, UUID
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

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


# A pooled connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 1.0


def create_engine(database_url: str, *, pool_size: int = 5) -> AsyncEngine:
    # Batches are committed by one task at a time per subscription; a small pool is plenty and
    # keeps the connection count low when six services share one server.
    engine = create_async_engine(database_url, pool_size=pool_size, max_overflow=pool_size)
    ping_after_idle(engine, PING_AFTER_IDLE_SECONDS)
    return engine


_IDLE_SINCE = "berth_idle_since"


def ping_after_idle(engine: AsyncEngine, seconds: float) -> None:
    """Ping a pooled connection before use when it was idle for ``seconds`` or more.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout, which with asyncpg is three round
    trips (BEGIN, a query, ROLLBACK) before every transaction: under load, tens of
    milliseconds per batch for connections that were in use a moment ago. A connection that
    was idle (the database may have restarted meanwhile) is still checked; one that fails the
    ping is replaced, and the pool's other connections with it. A connection that breaks
    between two close uses fails its transaction, which invalidates the pool too, and the
    caller retries it as an outage (``errors.is_transient``)."""
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    def checked_in(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or time.monotonic() - since < seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool replaces this connection (and every older one) and tries again.
            raise InvalidatePoolError(f"idle connection failed its ping: {exc}") from exc

    event.listen(sync_engine, "checkin", checked_in)
    event.listen(sync_engine, "checkout", checked_out)


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` (the same pool) with each statement its own transaction.

    A transaction on asyncpg costs two round trips of its own (BEGIN, then COMMIT or ROLLBACK)
    besides its statements. A single statement needs neither, and neither do reads: under READ
    COMMITTED each statement of a transaction takes its own snapshot anyway, so a read that
    runs several statements sees nothing more consistent inside BEGIN than outside it."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


async def ensure_schema(engine: AsyncEngine, schema: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
