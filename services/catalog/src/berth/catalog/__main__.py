from berth.catalog.bootstrap import build_app
from berth.catalog.config import CatalogSettings
from berth.shared.service import run

settings = CatalogSettings()
run(build_app(settings), settings)
