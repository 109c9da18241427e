"""The agent's store on PostgreSQL: phases recorded in bulk read back per workload."""

from __future__ import annotations

from dataclasses import replace
from uuid import uuid4

import pytest

from berth.scheduler_adapter.store import AppliedWorkload, PhaseChange, SqlAdapterStore
from berth.shared.db import create_engine
from berth.shared.migrations import upgrade
from tests.unit.scheduler_adapter.adapter_builders import ref

pytestmark = pytest.mark.integration


async def test_phases_and_intents_of_a_batch_are_recorded_per_workload(
    database_url: str,
) -> None:
    await upgrade("berth.scheduler_adapter", database_url)
    engine = create_engine(database_url)
    workloads = [ref(f"bulk-{i}", workload_id=str(uuid4())) for i in range(4)]
    ids = [w.workloadId for w in workloads]
    try:
        async with engine.begin() as conn:
            store = SqlAdapterStore(conn)
            await store.add(
                [
                    AppliedWorkload(
                        w.workloadId,
                        w.model_dump(mode="json"),
                        manifests=[{"kind": "Job", "metadata": {"name": w.name}}],
                        traceparent=f"00-{i:032x}-{i:016x}-01",
                        correlation_id=str(uuid4()),
                        project=w.project,
                        gpus=i / 2,
                    )
                    for i, w in enumerate(workloads, start=1)
                ]
            )
            await store.set_phases(
                [
                    PhaseChange(ids[0], "Pending", "waiting for a node"),
                    PhaseChange(ids[1], "Running"),
                    # Twice in one call: the later change is the one that holds.
                    PhaseChange(ids[1], "Degraded", "one pod down"),
                    PhaseChange(ids[2], "Stopping", desired="Stopped"),
                    PhaseChange(ids[2], "Stopped", desired="Stopped"),
                ]
            )
        async with engine.begin() as conn:
            rows = await SqlAdapterStore(conn).current([*ids, "not-recorded"], lock=True)
            # The rows a phase is judged by: the same, without the manifests.
            phased = await SqlAdapterStore(conn).current(ids, manifests=False)
        assert phased == {wid: replace(row, manifests=[]) for wid, row in rows.items()}
        assert set(rows) == set(ids)
        assert (rows[ids[0]].phase, rows[ids[0]].phase_message) == ("Pending", "waiting for a node")
        assert (rows[ids[1]].phase, rows[ids[1]].phase_message) == ("Degraded", "one pod down")
        assert (rows[ids[2]].phase, rows[ids[2]].desired) == ("Stopped", "Stopped")
        assert (rows[ids[3]].phase, rows[ids[3]].desired) == (None, "Running")
        async with engine.begin() as conn:
            assert await SqlAdapterStore(conn).current([]) == {}
    finally:
        await engine.dispose()
