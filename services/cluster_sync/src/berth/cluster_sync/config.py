from pydantic import Field

from berth.shared.settings import Settings


class ClusterSyncSettings(Settings):
    service_name: str = "cluster-sync"
    # A cluster whose agent has not reported for this long is marked disconnected (agents
    # report every 10 s by default: two missed reports), checked every few seconds.
    disconnect_after_seconds: float = Field(default=20.0, gt=0)
    liveness_check_seconds: float = Field(default=2.0, gt=0)
