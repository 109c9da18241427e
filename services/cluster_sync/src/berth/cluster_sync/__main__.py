from berth.cluster_sync.bootstrap import build_app
from berth.cluster_sync.config import ClusterSyncSettings
from berth.shared.service import run

settings = ClusterSyncSettings()
run(build_app(settings), settings)
