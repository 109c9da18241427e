from berth.shared.settings import Settings


class PolicySettings(Settings):
    service_name: str = "policy"
