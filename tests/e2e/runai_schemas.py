"""Run:ai 2.18's response schemas (tests/data/runai: a subset of its OpenAPI document), to check
what the api service answers against."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

DOCUMENT = Path(__file__).parents[1] / "data" / "runai" / "openapi-2.18-schemas.json"
URI = "urn:runai-2.18"


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` as JSON Schema's null type."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _registry() -> Registry:
    document = _json_schema(json.loads(DOCUMENT.read_text()))
    # OpenAPI documents declare no $schema: the resource is read as plain JSON.
    return Registry().with_resource(URI, Resource.opaque(document))


def problems(body: Any, schema: str) -> list[str]:
    """Why ``body`` is not a Run:ai ``schema`` (empty when it is)."""
    validator = Draft202012Validator(
        {"$ref": f"{URI}#/components/schemas/{schema}"}, registry=_registry()
    )
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]
