"""Free capacity of the simulated nodes, and placing pods on them.

Nodes of a pool are indexed by how many whole GPUs they have free, so placing a pod costs a
walk over a few buckets instead of a scan of every node: the simulator must stay fast with
thousands of nodes and workloads.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from berth.scheduler_adapter.simulation.inventory import Inventory, NodePoolSpec
from berth.scheduler_adapter.simulation.quantity import format_bytes

GPU_MILLI = 1000  # one GPU, in thousandths, so fractions add up exactly


@dataclass(frozen=True)
class PodDemand:
    """What one pod needs from a node."""

    gpus: int = 0  # whole devices
    gpu_milli: int = 0  # share of each shared device (gpu-fraction), in thousandths
    gpu_memory_mib: int = 0  # share of each shared device asked as memory (gpu-memory)
    shared_devices: int = 0  # devices the shared share spreads over; 0 = no sharing
    cpu_milli: int = 0
    memory: int = 0
    pools: tuple[str, ...] = ()  # node-pool label values, most preferred first
    restricted: bool = False  # True: only ``pools``; False: ``pools`` first, then any
    node_type: str = ""

    @property
    def gpu_total_milli(self) -> int:
        return self.gpus * GPU_MILLI + self.shared_devices * self.gpu_milli


class Node:
    __slots__ = ("cpu_free", "free_whole", "gpu_used", "memory_free", "name", "pool")

    def __init__(self, name: str, pool: Pool, gpus: int, cpu_milli: int, memory: int) -> None:
        self.name = name
        self.pool = pool
        self.gpu_used = [0] * gpus
        self.free_whole = gpus
        self.cpu_free = cpu_milli
        self.memory_free = memory

    def pick_gpus(self, demand: PodDemand) -> tuple[int, ...] | None:
        if demand.cpu_milli > self.cpu_free or demand.memory > self.memory_free:
            return None
        if demand.shared_devices:
            room = [
                (used, index)
                for index, used in enumerate(self.gpu_used)
                if GPU_MILLI - used >= demand.gpu_milli
            ]
            if len(room) < demand.shared_devices:
                return None
            # Fullest devices first: fractions pack together and whole devices stay free.
            room.sort(key=lambda item: -item[0])
            return tuple(sorted(index for _, index in room[: demand.shared_devices]))
        if demand.gpus:
            if self.free_whole < demand.gpus:
                return None
            free = [index for index, used in enumerate(self.gpu_used) if used == 0]
            return tuple(free[: demand.gpus])
        return ()

    def most_free_share(self) -> int:
        return max((GPU_MILLI - used for used in self.gpu_used), default=0)


@dataclass(frozen=True)
class Allocation:
    node: Node
    devices: tuple[int, ...]
    per_device_milli: int
    cpu_milli: int
    memory: int


class Pool:
    def __init__(self, spec: NodePoolSpec) -> None:
        self.label = spec.label_value
        self.node_type = spec.node_type
        self.gpus_per_node = spec.gpus_per_node
        self.gpu_memory_mib = spec.gpu_memory_mib
        self.nodes = [
            Node(
                f"{self.label}-node-{index}",
                self,
                spec.gpus_per_node,
                spec.cpu_millis,
                spec.memory_bytes,
            )
            for index in range(spec.nodes)
        ]
        self.by_free_whole: list[dict[str, Node]] = [{} for _ in range(spec.gpus_per_node + 1)]
        self.by_free_whole[spec.gpus_per_node] = {node.name: node for node in self.nodes}
        self.partly_shared: dict[str, Node] = {}
        self.free_milli = spec.nodes * spec.gpus_per_node * GPU_MILLI

    def candidates(self, demand: PodDemand) -> Iterator[Node]:
        if demand.shared_devices:
            yield from self.partly_shared.values()
            for free in range(1, self.gpus_per_node + 1):
                yield from self.by_free_whole[free].values()
        elif demand.gpus:
            # Fewest free devices first (bin packing) keeps whole nodes for big pods.
            for free in range(demand.gpus, self.gpus_per_node + 1):
                yield from self.by_free_whole[free].values()
        else:
            yield from self.nodes

    def share_of(self, demand: PodDemand) -> int:
        """A shared pod's share of one of this pool's devices, in thousandths."""
        if not demand.gpu_memory_mib:
            return demand.gpu_milli
        return min(GPU_MILLI, math.ceil(demand.gpu_memory_mib * GPU_MILLI / self.gpu_memory_mib))

    def place(self, demand: PodDemand) -> Allocation | None:
        if demand.gpu_memory_mib:
            demand = replace(demand, gpu_milli=self.share_of(demand))
        if demand.gpu_total_milli > self.free_milli:
            return None
        for node in self.candidates(demand):
            devices = node.pick_gpus(demand)
            if devices is not None:
                break
        else:
            return None
        per_device = demand.gpu_milli if demand.shared_devices else GPU_MILLI
        allocation = Allocation(node, devices, per_device, demand.cpu_milli, demand.memory)
        self._change(allocation, +1)
        return allocation

    def release(self, allocation: Allocation) -> None:
        self._change(allocation, -1)

    def _change(self, allocation: Allocation, sign: int) -> None:
        node = allocation.node
        for device in allocation.devices:
            node.gpu_used[device] += sign * allocation.per_device_milli
        node.cpu_free -= sign * allocation.cpu_milli
        node.memory_free -= sign * allocation.memory
        self.free_milli -= sign * allocation.per_device_milli * len(allocation.devices)
        free_whole = sum(1 for used in node.gpu_used if used == 0)
        if free_whole != node.free_whole:
            del self.by_free_whole[node.free_whole][node.name]
            self.by_free_whole[free_whole][node.name] = node
            node.free_whole = free_whole
        if any(0 < used < GPU_MILLI for used in node.gpu_used):
            self.partly_shared[node.name] = node
        else:
            self.partly_shared.pop(node.name, None)

    def most_free_whole(self) -> int:
        return next(
            (free for free in range(self.gpus_per_node, 0, -1) if self.by_free_whole[free]), 0
        )

    def most_free_share(self) -> int:
        if self.most_free_whole():
            return GPU_MILLI
        return max((node.most_free_share() for node in self.partly_shared.values()), default=0)


class Capacity:
    """Every pool of the cluster; places single pods and gangs, and says why one cannot fit."""

    def __init__(self, inventory: Inventory) -> None:
        self.pools = [Pool(spec) for spec in inventory.node_pools]
        self._by_label = {pool.label: pool for pool in self.pools}

    @property
    def gpus(self) -> int:
        return sum(len(pool.nodes) * pool.gpus_per_node for pool in self.pools)

    def pools_for(self, demand: PodDemand) -> list[Pool]:
        preferred = [self._by_label[label] for label in demand.pools if label in self._by_label]
        if not demand.restricted:
            preferred += [pool for pool in self.pools if pool not in preferred]
        if demand.node_type:
            preferred = [pool for pool in preferred if pool.node_type == demand.node_type]
        return preferred

    def release(self, allocation: Allocation) -> None:
        allocation.node.pool.release(allocation)

    def place(
        self, demands: Sequence[PodDemand], *, gang: int = 1
    ) -> tuple[list[Allocation | None], str]:
        """Allocations (None where a pod did not fit) and the reason for the first misfit;
        with ``gang`` above 1, at least that many pods are placed together or none is."""
        if gang > 1:
            return self._place_gang(demands, min(gang, len(demands)))
        placed: list[Allocation | None] = []
        reason = ""
        for demand in demands:
            allocation = next(
                (found for pool in self.pools_for(demand) if (found := pool.place(demand))), None
            )
            if allocation is None and not reason:
                reason = self.explain(demand)
            placed.append(allocation)
        return placed, reason

    def _place_gang(
        self, demands: Sequence[PodDemand], minimum: int
    ) -> tuple[list[Allocation | None], str]:
        # A gang lives in one pool, as KAI schedules a pod group within a single node pool;
        # pods beyond its minimum (an elastic job's) are placed there too when they fit.
        pools = [pool for pool in self.pools_for(demands[0]) if self._allowed(pool, demands)]
        needed = sum(demand.gpu_total_milli for demand in demands[:minimum])
        for pool in pools:
            if needed > pool.free_milli:
                continue
            placed: list[Allocation | None] = [pool.place(demand) for demand in demands]
            if sum(allocation is not None for allocation in placed) >= minimum:
                return placed, ""
            for allocation in placed:
                if allocation is not None:
                    pool.release(allocation)
        return [None] * len(demands), self._explain_gang(demands[:minimum], pools, needed)

    def _allowed(self, pool: Pool, demands: Sequence[PodDemand]) -> bool:
        return all(pool in self.pools_for(demand) for demand in demands[1:])

    def explain(self, demand: PodDemand) -> str:
        pools = self.pools_for(demand)
        if not pools:
            wanted = ",".join(demand.pools) or "any"
            kind = f" of node type {demand.node_type}" if demand.node_type else ""
            return f"no node pool{kind} matches pools {wanted}"
        names = ",".join(pool.label for pool in pools)
        if demand.shared_devices:
            if all(pool.most_free_share() < pool.share_of(demand) for pool in pools):
                best = max(pool.most_free_share() for pool in pools)
                wanted = (
                    f"{demand.gpu_memory_mib}MiB"
                    if demand.gpu_memory_mib
                    else f"{demand.gpu_milli / GPU_MILLI:g}"
                )
                return (
                    f"no node in pools {names} has a GPU with {wanted} free; "
                    f"most free: {best / GPU_MILLI:g} of a GPU"
                )
        elif demand.gpus:
            most = max(pool.most_free_whole() for pool in pools)
            if most < demand.gpus:
                return f"no node in pools {names} has {demand.gpus} free GPUs; most free: {most}"
        return (
            f"no node in pools {names} has {demand.cpu_milli / 1000:g} CPU cores and "
            f"{format_bytes(demand.memory)} memory free next to the GPUs it needs"
        )

    def _explain_gang(self, demands: Sequence[PodDemand], pools: list[Pool], needed: int) -> str:
        if not pools:
            return self.explain(demands[0])
        names = ",".join(pool.label for pool in pools)
        best = max(pool.free_milli for pool in pools)
        most = max(pool.most_free_whole() for pool in pools)
        return (
            f"gang of {len(demands)} pods needs {needed / GPU_MILLI:g} GPUs within one node pool "
            f"of {names}; most free in a pool: {best / GPU_MILLI:g}, on a node: {most}"
        )
