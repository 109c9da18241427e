"""Alembic, run programmatically: each service keeps its migrations in its own package and its
version table in its own schema, so services migrate independently."""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from berth.shared.db import INBOX, OUTBOX, inbox_columns, inbox_digest_column, outbox_columns


def alembic_config(package: str, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files(package) / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


async def upgrade(package: str, database_url: str, revision: str = "head") -> None:
    """Upgrade one service's schema; alembic is synchronous, so it runs in a worker thread."""
    await asyncio.to_thread(command.upgrade, alembic_config(package, database_url), revision)


def run_env(target_metadata: MetaData, schema: str) -> None:
    """Body of every service's ``migrations/env.py``."""
    cfg = context.config

    def do_run(connection: Connection) -> None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            include_schemas=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = async_engine_from_config(
            cfg.get_section(cfg.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
        async with engine.begin() as conn:
            # Services migrating concurrently would race on CREATE SCHEMA and the version table.
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
            await conn.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())


def create_messaging_tables(op: Any, schema: str) -> None:
    """The outbox and inbox every service has; called from each service's first migration.

    ``op`` is alembic's ``op`` proxy module (an ``Operations`` at run time)."""
    op.create_table(OUTBOX, *outbox_columns(), schema=schema)
    op.create_table(INBOX, *inbox_columns(), schema=schema)


def add_inbox_digest(op: Any, schema: str) -> None:
    """The inbox's content digest (see ``db.inbox_digest_column``)."""
    op.add_column(INBOX, inbox_digest_column(), schema=schema)


def drop_inbox_digest(op: Any, schema: str) -> None:
    op.drop_column(INBOX, "digest", schema=schema)
