"""Generate the published JSON Schemas: one per event, plus the workload submission.

    python -m berth.contracts.export            # (re)write contracts/schemas
    python -m berth.contracts.export --check    # exit 1 and list files that are out of date

Files are ``<domain>/<event>.v<N>.json`` (``berth.submission.received`` v1 ->
``submission/received.v1.json``), ``workload-submission.json``, and ``rpc/<Model>.json`` for
every request and reply model of the request-reply subjects, and ``meta/extensions.json``
declaring the keywords beyond JSON Schema the others use; JSON is pretty-printed with
sorted keys so that a diff shows only real changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from berth.contracts.envelope import Event
from berth.contracts.queries import Query
from berth.contracts.registry import ALL_EVENTS
from berth.contracts.workload import SYSTEM_DEFAULT_KEY, WorkloadSubmission

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"
"""``contracts/schemas`` of the source tree (the package is installed in editable mode)."""

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SUBMISSION_SCHEMA_FILE = "workload-submission.json"
EXTENSIONS_SCHEMA_FILE = "meta/extensions.json"


def extensions_schema() -> dict[str, Any]:
    """The keywords the published schemas use beyond JSON Schema 2020-12, declared for
    validators that refuse unknown keywords (ajv in strict mode). Each is an annotation: none
    changes what a schema accepts."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": "https://berth.dev/schemas/meta/extensions.json",
        "title": "berth schema extensions",
        "description": (
            "Keywords of berth's schemas beyond JSON Schema 2020-12; annotations only. A strict "
            "validator must be told them, e.g. ajv: addVocabulary(Object.keys(properties))."
        ),
        "type": "object",
        "properties": {
            "x-event-type": {
                "type": "string",
                "description": "The CloudEvents type of the event this schema describes.",
            },
            "x-event-version": {
                "type": "integer",
                "minimum": 1,
                "description": "The major version of the event's data; part of its subject.",
            },
            SYSTEM_DEFAULT_KEY: {
                "description": (
                    "The value the system fills in when neither the submission nor a policy "
                    "sets the field (policies may override it)."
                ),
            },
            "discriminator": {
                "type": "object",
                "description": (
                    "OpenAPI 3.1 discriminator of a oneOf: propertyName names the member's "
                    "tag, mapping its schema; the oneOf alone decides validity."
                ),
            },
        },
    }


def event_schema_file(event: type[Event]) -> str:
    """Relative path of an event's schema, e.g. ``submission/received.v1.json``."""
    domain, _, name = event.TYPE.removeprefix("berth.").partition(".")
    if not domain or not name:
        raise ValueError(f"event type {event.TYPE!r} is not berth.<domain>.<name>")
    return f"{domain}/{name}.v{event.VERSION}.json"


def event_schema(event: type[Event]) -> dict[str, Any]:
    schema = event.model_json_schema()
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["x-event-type"] = event.TYPE
    schema["x-event-version"] = event.VERSION
    return schema


def all_queries() -> tuple[type[Query], ...]:
    """Every request and reply model of the contracts (subclasses of ``Query``), by name."""
    found: dict[str, type[Query]] = {}
    pending: list[type[Query]] = [Query]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub.__name__ in found and found[sub.__name__] is not sub:
                raise ValueError(f"two query models are named {sub.__name__}")
            found[sub.__name__] = sub
            pending.append(sub)
    # Models a service defines for itself are not published contracts.
    return tuple(
        found[name]
        for name in sorted(found)
        if found[name].__module__.startswith("berth.contracts.")
    )


def query_schema_file(query: type[Query]) -> str:
    """Relative path of a request/reply model's schema, e.g. ``rpc/WorkloadReply.json``."""
    return f"rpc/{query.__name__}.json"


def query_schema(query: type[Query]) -> dict[str, Any]:
    schema = query.model_json_schema()
    schema["$schema"] = JSON_SCHEMA_DIALECT
    return schema


def submission_schema() -> dict[str, Any]:
    schema = TypeAdapter(WorkloadSubmission).json_schema()
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["title"] = "WorkloadSubmission"
    return schema


def generate() -> dict[str, dict[str, Any]]:
    """Every published schema, by path relative to the schema directory."""
    schemas = {event_schema_file(event): event_schema(event) for event in ALL_EVENTS}
    if len(schemas) != len(ALL_EVENTS):
        raise ValueError("two events map to the same schema file")
    schemas[SUBMISSION_SCHEMA_FILE] = submission_schema()
    schemas[EXTENSIONS_SCHEMA_FILE] = extensions_schema()
    schemas.update({query_schema_file(q): query_schema(q) for q in all_queries()})
    return dict(sorted(schemas.items()))


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def out_of_date(directory: Path = SCHEMA_DIR) -> list[str]:
    """Files that differ from what would be generated, are missing, or match no current schema."""
    expected = {path: render(schema) for path, schema in generate().items()}
    problems = [
        f"{path}: {'missing' if not (directory / path).is_file() else 'differs'}"
        for path, text in expected.items()
        if not (directory / path).is_file() or (directory / path).read_text("utf-8") != text
    ]
    if directory.is_dir():
        problems.extend(
            f"{path}: not generated by any current model"
            for path in sorted(
                p.relative_to(directory).as_posix() for p in directory.rglob("*.json")
            )
            if path not in expected
        )
    return problems


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    """Write every schema; returns the files that changed."""
    changed: list[str] = []
    for path, schema in generate().items():
        target = directory / path
        text = render(schema)
        if target.is_file() and target.read_text("utf-8") == text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, "utf-8")
        changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m berth.contracts.export", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report out-of-date files")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="schema directory")
    args = parser.parse_args(argv)
    directory: Path = args.dir
    if args.check:
        problems = out_of_date(directory)
        for problem in problems:
            sys.stderr.write(f"{problem}\n")
        if problems:
            sys.stderr.write("run: python -m berth.contracts.export\n")
        return 1 if problems else 0
    for path in write(directory):
        sys.stdout.write(f"wrote {directory / path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
