from berth.shared.settings import Settings


class OwnershipSettings(Settings):
    service_name: str = "ownership"
    # How long authorizing a batch of actions waits for intake to describe their workloads;
    # without an answer the batch is retried later, never denied.
    intake_timeout_seconds: float = 5.0
