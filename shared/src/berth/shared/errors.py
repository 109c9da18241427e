"""berth's exception hierarchy.

BerthError
├── TransientError   retry later (broker or database unavailable, timeouts); messages are nak'ed
└── PermanentError   retrying cannot help (undecodable message); messages are terminated
"""


class BerthError(Exception):
    """Base of every error berth raises on purpose."""


class TransientError(BerthError):
    """Worth retrying: the same input may succeed later."""


class PermanentError(BerthError):
    """Not worth retrying: the input itself is unusable."""


# OSErrors about local files are bugs or configuration, not outages.
_LOCAL_OS_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def _about_a_local_file(exc: BaseException) -> bool:
    """An error about a local file: the OS names the file. The same errors without a file name
    come from connecting to a unix socket that is not there, as when a PostgreSQL reached
    through its socket directory (the embedded one) is down: that is an outage."""
    if not isinstance(exc, _LOCAL_OS_ERRORS):
        return False
    return not (exc.errno is not None and exc.filename is None)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is an outage of the infrastructure rather than a
    problem of the message being handled: a database or NATS that cannot be reached, a
    connection lost, a timeout. Such failures are retried for as long as it takes and never
    count against a message."""
    # Imported here: this module is imported by everything, these only by the runtime.
    import asyncpg  # type: ignore[import-untyped]
    import nats.errors
    import nats.js.errors
    import sqlalchemy.exc

    transient: tuple[type[BaseException], ...] = (
        TransientError,
        OSError,  # ConnectionRefusedError, ConnectionResetError, socket errors
        TimeoutError,  # asyncio.TimeoutError too
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.InterfaceError,
        sqlalchemy.exc.DisconnectionError,
        asyncpg.exceptions.PostgresConnectionError,
        asyncpg.exceptions.InterfaceError,
        asyncpg.exceptions.CannotConnectNowError,
        asyncpg.exceptions.TooManyConnectionsError,
        asyncpg.exceptions.AdminShutdownError,
        nats.errors.ConnectionClosedError,
        nats.errors.ConnectionReconnectingError,
        nats.errors.ConnectionDrainingError,
        nats.errors.NoServersError,
        nats.errors.NoRespondersError,
        nats.errors.TimeoutError,
        nats.errors.StaleConnectionError,
        nats.errors.OutboundBufferLimitError,
        nats.js.errors.ServiceUnavailableError,
        nats.js.errors.NoStreamResponseError,
    )
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, PermanentError):
            return False
        if isinstance(current, transient) and not _about_a_local_file(current):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return False
