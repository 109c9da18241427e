from berth.shared.settings import Settings


class OwnershipSettings(Settings):
    service_name: str = "ownership"
