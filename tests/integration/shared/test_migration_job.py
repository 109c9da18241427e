"""Schemas migrated once by a job (``python -m berth.shared.migrations``) while the services,
started with BERTH_MIGRATE_ON_START=false, wait for it instead of migrating themselves."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from berth.shared.migrations import code_revisions, schema_revisions, wait_for_head

pytestmark = pytest.mark.integration


async def test_a_service_waits_until_the_job_has_migrated_its_schema(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        assert await schema_revisions(engine, "intake") == set()
        waiting = asyncio.create_task(
            wait_for_head("berth.intake", engine, "intake", who="intake", interval=0.1)
        )
        await asyncio.sleep(0.5)
        assert not waiting.done()

        env = {"BERTH_DATABASE_URL": database_url, "PATH": ""}
        job = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "berth.shared.migrations", "berth.intake", "berth.policy",
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await job.communicate()
        assert job.returncode == 0, output.decode()

        await asyncio.wait_for(waiting, 10)
        heads, _ = code_revisions("berth.intake")
        assert await schema_revisions(engine, "intake") == heads
        assert await schema_revisions(engine, "policy") == code_revisions("berth.policy")[0]
    finally:
        await engine.dispose()


async def test_a_schema_a_newer_release_migrated_does_not_hold_an_older_replica(
    database_url: str,
) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE SCHEMA ownership")
            await conn.exec_driver_sql(
                "CREATE TABLE ownership.alembic_version (version_num varchar(32) PRIMARY KEY)"
            )
            await conn.exec_driver_sql("INSERT INTO ownership.alembic_version VALUES ('9999_new')")
        await asyncio.wait_for(
            wait_for_head("berth.ownership", engine, "ownership", who="ownership", interval=0.1), 5
        )
    finally:
        await engine.dispose()
