"""Building blocks of the in-process simulated cluster (``berth.scheduler_adapter.simulated``)."""

from berth.scheduler_adapter.simulation.inventory import Inventory, NodePoolSpec

__all__ = ["Inventory", "NodePoolSpec"]
