from berth.shared.settings import Settings


class CatalogSettings(Settings):
    service_name: str = "catalog"
    # A fresh install gets the demo organisation and assets, so a first submission works.
    seed_demo: bool = True
