"""Where the CLI finds berth: flags and environment first, then what ``berth up`` recorded."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


def state_file() -> Path:
    base = os.environ.get("BERTH_HOME") or str(Path.home() / ".berth")
    return Path(base) / "endpoints.json"


# The credential files of the CLI's roles, when set: ``ui`` for everyday commands, ``admin``
# for operator tools.
CREDENTIALS_ENV = {"ui": "BERTH_NATS_CREDENTIALS", "admin": "BERTH_NATS_ADMIN_CREDENTIALS"}


def record(
    nats_url: str,
    database_url: str,
    credentials_dir: Path | None = None,
    identity_dir: Path | None = None,
) -> None:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"nats_url": nats_url, "database_url": database_url, "pid": os.getpid()}
    if credentials_dir is not None:
        state["nats_credentials_dir"] = str(credentials_dir)
    if identity_dir is not None:
        state["identity_dir"] = str(identity_dir)
    path.write_text(json.dumps(state))


def forget() -> None:
    """Remove the record, unless another `berth up` has written its own since."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        if int(json.loads(state_file().read_text())["pid"]) == os.getpid():
            state_file().unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running() -> dict[str, str] | None:
    """What the `berth up` that is still running recorded."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        state = json.loads(state_file().read_text())
        if _alive(int(state["pid"])):
            return {k: str(v) for k, v in state.items()}
    return None


class NotRunning(Exception):
    """No NATS was named and no `berth up` is running: nothing to talk to."""


def nats_url(explicit: str | None = None) -> str:
    """The NATS to talk to: the flag's, the environment's, or the running `berth up`'s. Never a
    guess: a server on the usual port may be somebody else's."""
    if explicit:
        return explicit
    if os.environ.get("BERTH_NATS_URL"):
        return os.environ["BERTH_NATS_URL"]
    state = _running()
    if state:
        return state["nats_url"]
    raise NotRunning(
        f"berth is not running: no `berth up` is recorded in {state_file()}; start one (make "
        f"run) or name a NATS with BERTH_NATS_URL or --nats-url (e.g. {DEFAULT_NATS_URL})"
    )


def nats_credentials(url: str, role: str = "ui") -> str | None:
    """The nkey seed file to connect to ``url`` as ``role`` with: the environment's (see
    CREDENTIALS_ENV), else the one `berth up` generated when ``url`` is the NATS it started."""
    if os.environ.get(CREDENTIALS_ENV[role]):
        return os.environ[CREDENTIALS_ENV[role]]
    state = _running()
    if state and state["nats_url"] == url and state.get("nats_credentials_dir"):
        path = Path(state["nats_credentials_dir"]) / f"{role}.nk"
        if path.exists():
            return str(path)
    return None


def identity_dir() -> Path | None:
    """Where the running `berth up` keeps its development issuer's key, if it made one."""
    state = _running()
    return Path(state["identity_dir"]) if state and state.get("identity_dir") else None
