"""Every published JSON Schema compiles with ajv in strict mode, knowing only the schemas; every
AsyncAPI document is valid against the official AsyncAPI 3.0.0 schema.

A client in another language must not have to guess: the keywords beyond JSON Schema 2020-12
are declared in ``meta/extensions.json``, and ajv (the validator most JavaScript clients use)
refuses any keyword it was not told about. Needs node and npm (CI has both); ajv is installed
once per session into a temporary directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from berth.contracts import export

HERE = Path(__file__).resolve().parent
SCHEMA_DIR = HERE.parents[1] / "contracts" / "schemas"
ASYNCAPI_DIR = HERE.parents[1] / "contracts" / "asyncapi"
PACKAGES = ("ajv@8", "ajv-cli@5", "ajv-formats@3", "@asyncapi/specs@6")


@pytest.fixture(scope="session")
def ajv_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run ajv over the schemas (CI has both)")
    prefix = tmp_path_factory.mktemp("ajv")
    result = subprocess.run(
        [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", *PACKAGES],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"npm could not install ajv: {result.stderr.strip()[-500:]}")
    return prefix / "node_modules"


def test_every_schema_compiles_in_ajv_strict_mode(ajv_modules: Path) -> None:
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [node, str(HERE / "ajv_compile.js"), str(ajv_modules), str(SCHEMA_DIR)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert report["failures"] == [], "\n".join(report["failures"])
    assert report["compiled"] == len(export.generate())
    assert result.returncode == 0, result.stderr


def test_every_asyncapi_document_is_valid_asyncapi_3(ajv_modules: Path) -> None:
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [node, str(HERE / "asyncapi_validate.js"), str(ajv_modules), str(ASYNCAPI_DIR)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert report["failures"] == [], "\n".join(report["failures"])
    assert report["validated"] == len(list(ASYNCAPI_DIR.glob("*.json")))
    assert result.returncode == 0, result.stderr
