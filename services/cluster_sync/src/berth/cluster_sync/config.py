from berth.shared.settings import Settings


class ClusterSyncSettings(Settings):
    service_name: str = "cluster-sync"
