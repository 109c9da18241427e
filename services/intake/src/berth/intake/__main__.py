from berth.intake.bootstrap import build_app
from berth.intake.config import IntakeSettings
from berth.shared.service import run

settings = IntakeSettings()
run(build_app(settings), settings)
