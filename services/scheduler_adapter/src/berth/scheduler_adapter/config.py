from pathlib import Path
from typing import Literal

from berth.shared.settings import Settings


class SchedulerAdapterSettings(Settings):
    service_name: str = "scheduler-adapter"
    # Only the simulated cluster for now; the Kubernetes backend plugs in behind the same port.
    cluster_backend: Literal["simulated"] = "simulated"
    # YAML inventory of the simulated cluster; the built-in default when unset.
    sim_inventory: Path | None = None
    # Simulated seconds per wall-clock second (tests and benchmarks run the cluster faster).
    sim_speed: float = 1.0
