from berth.shared.settings import Settings


class IntakeSettings(Settings):
    service_name: str = "intake"
    catalog_timeout_seconds: float = 5.0
