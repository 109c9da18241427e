"""Write (or, with --check, verify) the OpenAPI document of the api service (Run:ai's REST API
over berth) into contracts/openapi/api.json.

Run from the repository root with the development environment, which has the api service:
``python contracts/scripts/openapi.py [--check]``. The document is generated from the routes and
the contract models their bodies are validated by; the service itself serves the same document
at ``/openapi.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, cast

from berth.api.app import create_app
from berth.api.bus import Bus

OUT = Path(__file__).resolve().parent.parent / "openapi" / "api.json"


def render() -> str:
    # Describing the routes asks nothing of the bus.
    app = create_app(cast(Bus, None))
    spec: dict[str, Any] = app.openapi()
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report an out-of-date document")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            sys.stderr.write(f"{OUT} is out of date: run `make contracts`\n")
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
