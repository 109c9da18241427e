from berth.policy.bootstrap import build_app
from berth.policy.config import PolicySettings
from berth.shared.service import run

settings = PolicySettings()
run(build_app(settings), settings)
