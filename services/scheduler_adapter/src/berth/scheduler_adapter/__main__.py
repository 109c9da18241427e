from berth.scheduler_adapter.bootstrap import build_app, tune_collector
from berth.scheduler_adapter.config import SchedulerAdapterSettings
from berth.shared.service import run

tune_collector()
settings = SchedulerAdapterSettings()
run(build_app(settings), settings)
