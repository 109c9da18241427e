"""The api service's OpenAPI document: current, and its bodies are the contract models."""

from __future__ import annotations

import json

import pytest

from berth.api.views import COLLECTIONS
from berth.contracts.workload import SUBMISSION_CLASSES

pytestmark = pytest.mark.unit


def _document() -> dict[str, object]:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "contracts" / "scripts" / "openapi.py"
    spec = importlib.util.spec_from_file_location("openapi_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "contracts/openapi/api.json is stale: make contracts"
    return dict(json.loads(module.OUT.read_text()))


def test_each_kinds_creation_body_is_its_submission_model_and_errors_are_runais() -> None:
    paths = _document()["paths"]
    assert isinstance(paths, dict)
    for cls in SUBMISSION_CLASSES:
        kind = cls.model_fields["kind"].default
        post = paths[f"/api/v1/workloads/{COLLECTIONS[kind]}"]["post"]
        schema = post["requestBody"]["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith(f"/{cls.__name__}")
        assert {"200", "400", "401", "403", "503"} <= set(post["responses"])
        assert "422" not in post["responses"]
