"""The committed AsyncAPI documents are what the services actually do."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "asyncapi_gen", ROOT / "contracts" / "scripts" / "asyncapi.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("service", sorted(_generator().SERVICES))
def test_committed_document_is_current(service: str) -> None:
    gen = _generator()
    committed = (ROOT / "contracts" / "asyncapi" / f"{service}.json").read_text()
    assert committed == gen.render(gen.document(service)), "run `make contracts`"


def test_intake_documents_the_submission_it_consumes() -> None:
    doc = json.loads((ROOT / "contracts" / "asyncapi" / "intake.json").read_text())
    assert doc["asyncapi"].startswith("3.")
    assert doc["channels"]["intake-submissions"]["address"] == "submission.requested.v1.*"
    schemas = doc["components"]["schemas"]
    assert "SubmissionRequestedV1" in schemas
    assert "SubmissionReceivedV1" in schemas and "SubmissionRejectedV1" in schemas
