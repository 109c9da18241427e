from berth.ownership.bootstrap import build_app
from berth.ownership.config import OwnershipSettings
from berth.shared.service import run

settings = OwnershipSettings()
run(build_app(settings), settings)
