"""Async engine and the per-service schema: every service owns one PostgreSQL schema."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, DateTime, LargeBinary, MetaData, Table, Text, func, text
from sqlalchemy.dialects.postgresql import BIGINT, JSONB, UUID
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


def create_engine(database_url: str, *, pool_size: int = 5) -> AsyncEngine:
    # Batches are committed by one task at a time per subscription; a small pool is plenty and
    # keeps the connection count low when six services share one server.
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
    )


async def ensure_schema(engine: AsyncEngine, schema: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
