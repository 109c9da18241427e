"""An action is judged against the workload's latest phase, also when what the cluster reported
is being recorded at the same moment (real PostgreSQL, two transactions).

The action used to read the phase without waiting: a snapshot transaction recording "Deleted"
committed while the action's update waited for it, and the action then wrote "Deleting" over
it and emitted it after "Deleted" (seen as a rare ordering failure of
test_adapter_restart.py's suspend/resume/delete test)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from berth.contracts.envelope import Actor
from berth.contracts.events import WorkloadActionAuthorizedData, WorkloadActionAuthorizedV1
from berth.scheduler_adapter import handlers
from berth.scheduler_adapter.store import AppliedWorkload, PhaseChange, SqlAdapterStore
from berth.shared.db import create_engine
from berth.shared.migrations import upgrade
from berth.shared.testing import FakeUnitOfWork, incoming
from tests.integration.shared.helpers import eventually
from tests.unit.scheduler_adapter.adapter_builders import ref
from tests.unit.scheduler_adapter.adapter_fakes import RecordingCluster

pytestmark = pytest.mark.integration

CLUSTER = "local"


async def test_an_action_waits_for_a_phase_being_recorded_and_acts_on_it(
    database_url: str,
) -> None:
    await upgrade("berth.scheduler_adapter", database_url)
    engine = create_engine(database_url)
    workload = ref("raced").model_copy(update={"clusterId": CLUSTER})
    wid = workload.workloadId
    try:
        async with engine.begin() as conn:
            store = SqlAdapterStore(conn)
            await store.add([AppliedWorkload(wid, workload.model_dump(), manifests=[])])
            await store.set_phases([PhaseChange(wid, "Running")])

        delete = WorkloadActionAuthorizedV1(
            source="/berth/ownership",
            subject=wid,
            actor=Actor(email="alice@example.com"),
            data=WorkloadActionAuthorizedData(
                action="delete", name=workload.name, project=workload.project, workload=workload
            ),
        )
        cluster = RecordingCluster()
        unit = FakeUnitOfWork()
        async with engine.connect() as snapshot_conn, engine.connect() as action_conn:
            # The cluster's report is being recorded: its transaction holds the workload's row.
            snapshot_tx = await snapshot_conn.begin()
            observed = SqlAdapterStore(snapshot_conn)
            await observed.current([wid], lock=True)

            async def act() -> None:
                async with action_conn.begin():
                    await handlers.act_on_actions(
                        [incoming(delete)],
                        unit,
                        backend=cluster,
                        cluster_id=CLUSTER,
                        store=lambda _unit: SqlAdapterStore(action_conn),
                    )

            acting = asyncio.create_task(act())

            async def action_waits() -> bool:
                async with engine.connect() as conn:
                    waiting = await conn.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                            "'Lock' AND datname = current_database()"
                        )
                    )
                return bool(waiting)

            await eventually(action_waits)
            # The cluster reported the workload gone (deleted by someone else).
            await observed.set_phases([PhaseChange(wid, "Deleted")])
            await snapshot_tx.commit()
            await acting

        # Judged against "Deleted": nothing to do, nothing emitted after it.
        assert unit.emitted == []
        assert cluster.calls == []
        async with engine.connect() as conn:
            [row] = (await SqlAdapterStore(conn).current([wid])).values()
        assert row.phase == "Deleted"
    finally:
        await engine.dispose()
