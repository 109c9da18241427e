from berth.scheduler_adapter.bootstrap import build_app
from berth.scheduler_adapter.config import SchedulerAdapterSettings
from berth.shared.service import run

settings = SchedulerAdapterSettings()
run(build_app(settings), settings)
