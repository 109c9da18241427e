"""Records every snapshot a cluster backend streams, and waits for phases."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

from berth.scheduler_adapter.backend import WorkloadSnapshot
from berth.scheduler_adapter.phases import derive_phase
from berth.scheduler_adapter.simulation import Inventory
from berth.scheduler_adapter.simulation.cluster import SimulatedCluster


class Recorder:
    def __init__(self, stream: AsyncIterator[list[WorkloadSnapshot]]) -> None:
        self.history: dict[str, list[WorkloadSnapshot]] = defaultdict(list)
        self.batches: list[int] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._consume(stream))

    async def _consume(self, stream: AsyncIterator[list[WorkloadSnapshot]]) -> None:
        async for batch in stream:
            self.batches.append(len(batch))
            for snapshot in batch:
                self.history[snapshot.workload_id].append(snapshot)
            self._changed.set()

    def last(self, workload_id: str) -> WorkloadSnapshot:
        return self.history[workload_id][-1]

    def phase(self, workload_id: str) -> str:
        snapshots = self.history.get(workload_id)
        return derive_phase(snapshots[-1])[0] if snapshots else ""

    def phases(self, workload_id: str) -> list[str]:
        """Distinct consecutive phases the workload went through."""
        result: list[str] = []
        for snapshot in self.history.get(workload_id, ()):
            phase = derive_phase(snapshot)[0]
            if not result or result[-1] != phase:
                result.append(phase)
        return result

    async def wait_for(self, workload_id: str, *phases: str, timeout: float = 5.0) -> None:
        await self.wait_until(
            workload_id, lambda s: derive_phase(s)[0] in phases, timeout=timeout, what=phases
        )

    async def wait_until(
        self,
        workload_id: str,
        check: Callable[[WorkloadSnapshot], bool],
        *,
        timeout: float = 5.0,
        what: object = "the expected state",
    ) -> None:
        """Wait until the workload's latest snapshot passes ``check``."""

        async def reached() -> None:
            while not (self.history.get(workload_id) and check(self.last(workload_id))):
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(reached(), timeout)
        except TimeoutError:
            seen = self.phases(workload_id)
            raise AssertionError(f"{workload_id} never reached {what}; went {seen}") from None

    async def settle(self, seconds: float = 0.05) -> None:
        await asyncio.sleep(seconds)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def recording(cluster: SimulatedCluster) -> AsyncIterator[Recorder]:
    recorder = Recorder(cluster.snapshots())
    await asyncio.sleep(0)  # let the subscription register before anything happens
    try:
        yield recorder
    finally:
        await recorder.close()


@contextlib.asynccontextmanager
async def simulated(
    inventory: Inventory | None = None,
    *,
    speed: float = 1000.0,
    batch_size: int = 500,
    **options: Any,
) -> AsyncIterator[tuple[SimulatedCluster, Recorder]]:
    """A started simulated cluster and a recorder subscribed to it."""
    cluster = SimulatedCluster(
        inventory or Inventory.default(), speed=speed, batch_size=batch_size, **options
    )
    await cluster.start()
    try:
        async with recording(cluster) as recorder:
            yield cluster, recorder
    finally:
        await cluster.close()
