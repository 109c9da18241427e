from berth.shared.settings import Settings


class PolicySettings(Settings):
    service_name: str = "policy"
    # A project policy's department and cluster come from the catalog when its meta omits them.
    catalog_timeout_seconds: float = 5.0
