"""Intake's migration 0010 on a database where ownership recorded workload references before:
a workload received before the upgrade keeps its exact reference (quota marks included)."""

from __future__ import annotations

import json

from sqlalchemy import text

from berth.shared.db import create_engine
from berth.shared.migrations import upgrade


async def test_references_ownership_recorded_are_copied(database_url: str) -> None:
    await upgrade("berth.ownership", database_url)
    await upgrade("berth.intake", database_url, "0009")
    reference = {"workloadId": "w-1", "namespace": "ns-a", "queue": "a", "overQuota": True}
    db = create_engine(database_url)
    try:
        async with db.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO ownership.owners (workload_id, cluster_id, created_by, ref)"
                    " VALUES ('w-1', 'local', 'alice@x', CAST(:ref AS jsonb))"
                ),
                {"ref": json.dumps(reference)},
            )
            await conn.execute(
                text(
                    "INSERT INTO intake.workloads (id, cluster_id, created_by, status, submission)"
                    " VALUES ('w-1', 'local', 'alice@x', 'received', '{}'),"
                    " ('w-2', 'local', 'alice@x', 'received', '{}')"
                )
            )
        await upgrade("berth.intake", database_url)
        async with db.connect() as conn:
            rows = dict(
                (await conn.execute(text("SELECT id, ref FROM intake.workloads"))).tuples().all()
            )
    finally:
        await db.dispose()
    assert rows == {"w-1": reference, "w-2": None}


async def test_without_ownership_s_table_the_column_is_added_empty(database_url: str) -> None:
    await upgrade("berth.intake", database_url)
    db = create_engine(database_url)
    try:
        async with db.connect() as conn:
            column = await conn.scalar(
                text(
                    "SELECT data_type FROM information_schema.columns"
                    " WHERE table_schema = 'intake' AND table_name = 'workloads'"
                    " AND column_name = 'ref'"
                )
            )
    finally:
        await db.dispose()
    assert column == "jsonb"
