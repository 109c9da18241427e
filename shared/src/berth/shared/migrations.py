"""Alembic, run programmatically: each service keeps its migrations in its own package and its
version table in its own schema, so services migrate independently.

A service migrates its schema at start unless ``BERTH_MIGRATE_ON_START`` is false; then a job
runs ``python -m berth.shared.migrations PACKAGE...`` once (the Helm chart's migration job) and
the service waits until its schema is at the revision its code expects.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from importlib import resources
from typing import Any

from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_engine_from_config

from berth.shared.db import INBOX, OUTBOX, inbox_columns, inbox_digest_column, outbox_columns

log = logging.getLogger(__name__)


def alembic_config(package: str, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files(package) / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


async def upgrade(package: str, database_url: str, revision: str = "head") -> None:
    """Upgrade one service's schema; alembic is synchronous, so it runs in a worker thread."""
    await asyncio.to_thread(command.upgrade, alembic_config(package, database_url), revision)


def code_revisions(package: str) -> tuple[set[str], set[str]]:
    """(heads, every revision) of ``package``'s migrations."""
    script = ScriptDirectory.from_config(alembic_config(package, "postgresql://"))
    return set(script.get_heads()), {r.revision for r in script.walk_revisions()}


async def schema_revisions(engine: AsyncEngine, schema: str) -> set[str]:
    """The revisions ``schema`` is at; empty when it was never migrated."""
    async with engine.connect() as conn:
        exists = await conn.scalar(
            text("SELECT to_regclass(:table) IS NOT NULL"), {"table": f'"{schema}".alembic_version'}
        )
        if not exists:
            return set()
        rows = await conn.execute(text(f'SELECT version_num FROM "{schema}".alembic_version'))
        return {str(row[0]) for row in rows}


async def wait_for_head(
    package: str, engine: AsyncEngine, schema: str, *, who: str, interval: float = 2.0
) -> None:
    """Return once ``schema`` is at the head of ``package``'s migrations, or past it (a newer
    release migrated it during a rolling upgrade: migrations only add, so the older code still
    runs on it)."""
    heads, known = code_revisions(package)
    while True:
        try:
            current = await schema_revisions(engine, schema)
        except (DBAPIError, OSError) as exc:
            current, reason = set(), f"database unreachable ({type(exc).__name__})"
        else:
            reason = f"at {', '.join(sorted(current)) or 'no revision'}"
        if current and (current == heads or not current <= known):
            return
        log.warning(
            "%s: waiting for schema %s to be migrated to %s (%s); the migration job runs "
            "`python -m berth.shared.migrations %s`",
            who,
            schema,
            ", ".join(sorted(heads)),
            reason,
            package,
        )
        await asyncio.sleep(interval)


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


def main(argv: list[str] | None = None) -> int:
    """Upgrade the schemas of the named service packages, one after another (the migration job:
    it runs once per release, so that no replica migrates)."""
    from berth.shared.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m berth.shared.migrations")
    parser.add_argument("packages", nargs="+", metavar="PACKAGE", help="e.g. berth.intake")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    url = Settings().database_url
    for package in args.packages:
        asyncio.run(upgrade(package, url))
        log.info("%s: schema at %s", package, ", ".join(sorted(code_revisions(package)[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
