"""``python -m berth.api``: the gateway, connected to NATS as the ``ui`` role."""

from __future__ import annotations

import asyncio
import logging

import uvicorn
from opentelemetry import trace

from berth.api.app import create_app
from berth.api.auth import DevIssuer
from berth.api.bus import NatsBus
from berth.api.config import ApiSettings
from berth.contracts.roles import UI
from berth.shared import bus
from berth.shared.logs import configure
from berth.shared.telemetry import setup_tracing

log = logging.getLogger("berth.api")


async def main(settings: ApiSettings) -> None:
    nc = await bus.connect(
        settings.nats_url,
        name="berth-api",
        credentials=settings.nats_credentials,
        role=UI,
        max_reconnect_attempts=-1,
    )
    provider = setup_tracing(
        "api",
        otlp_endpoint=settings.otlp_endpoint if settings.local_traces else None,
        nats_client=nc if settings.local_traces else None,
        loop=asyncio.get_running_loop(),
    )
    # The span of each HTTP call that publishes starts the workload's trace.
    trace.set_tracer_provider(provider)
    timeout = settings.answer_timeout_seconds
    dev = None
    if settings.dev_issuer_key and settings.oidc_issuer:
        dev = DevIssuer.load(settings.dev_issuer_key, settings.oidc_issuer, settings.oidc_audience)
    app = create_app(NatsBus(nc, timeout), timeout=timeout, dev_issuer=dev)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.api_host, port=settings.api_port, log_config=None, access_log=False
        )
    )
    log.info("serving on http://%s:%d", settings.api_host, settings.api_port)
    try:
        await server.serve()
    finally:
        provider.shutdown()
        await nc.drain()


if __name__ == "__main__":
    api_settings = ApiSettings()
    configure(api_settings.service_name, api_settings.log_level)
    asyncio.run(main(api_settings))
