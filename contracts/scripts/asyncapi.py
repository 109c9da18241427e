"""Write (or, with --check, verify) one AsyncAPI 3 document per service into contracts/asyncapi/.

Run from the repository root with the development environment, which has every service:
``python contracts/scripts/asyncapi.py [--check]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "asyncapi"
SERVICES = {
    "intake": ("berth.intake", "IntakeSettings"),
    "policy": ("berth.policy", "PolicySettings"),
    "catalog": ("berth.catalog", "CatalogSettings"),
    "cluster-sync": ("berth.cluster_sync", "ClusterSyncSettings"),
    "ownership": ("berth.ownership", "OwnershipSettings"),
    "scheduler-adapter": ("berth.scheduler_adapter", "SchedulerAdapterSettings"),
}


def document(service: str) -> dict[str, Any]:
    package, settings_class = SERVICES[service]
    bootstrap = importlib.import_module(f"{package}.bootstrap")
    config = importlib.import_module(f"{package}.config")
    # Fixed settings, so the document does not depend on the environment it is generated in.
    settings = getattr(config, settings_class)(nats_url="nats://127.0.0.1:4222")
    built = bootstrap.build(settings)
    spec: dict[str, Any] = built.spec_app.schema.to_specification().to_jsonable()
    return spec


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report out-of-date documents")
    args = parser.parse_args(argv)
    stale = []
    for service in SERVICES:
        path = OUT / f"{service}.json"
        text = render(document(service))
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
