"""The user's CLI preferences (the default project), kept beside the endpoints record."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from berth.cli import endpoints


def path() -> Path:
    return endpoints.state_file().with_name("config.json")


def load() -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path().read_text("utf-8"))
        if isinstance(data, dict):
            return data
    return {}


def save(**values: Any) -> None:
    data = {**load(), **values}
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({k: v for k, v in data.items() if v is not None}, indent=2))
