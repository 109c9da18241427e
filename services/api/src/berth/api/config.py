from berth.shared.settings import Settings


class ApiSettings(Settings):
    service_name: str = "api"
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    # How long a request waits for the services' answer (a submission: intake, then policy).
    answer_timeout_seconds: float = 30.0
    # The development issuer's key (BERTH_DEV_ISSUER_KEY), given only when the suite trusts
    # that issuer: the console's login then asks for an email instead of a pasted token.
    dev_issuer_key: str | None = None
