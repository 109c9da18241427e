"""Building blocks of the in-process simulated cluster (``simulation.cluster``)."""

from berth.scheduler_adapter.simulation.inventory import Inventory, NodePoolSpec

__all__ = ["Inventory", "NodePoolSpec"]
