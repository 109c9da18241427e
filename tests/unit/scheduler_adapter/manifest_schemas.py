"""Strict schema checks of rendered objects: core kinds with kubernetes-validate, custom
resources with jsonschema against the CRD schemas in tests/data/crds."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import yaml

CRD_DIR = Path(__file__).resolve().parents[2] / "data" / "crds"
K8S_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
CORE_GROUPS = frozenset({"v1", "apps/v1", "batch/v1", "autoscaling/v2"})


def _closed(schema: Any) -> Any:
    """``schema`` with every object that lists properties closed to other ones."""
    if isinstance(schema, dict):
        result = {key: _closed(value) for key, value in schema.items()}
        if "properties" in result and "additionalProperties" not in result:
            result["additionalProperties"] = False
        return result
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


@cache
def crd_validators() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    common = yaml.safe_load((CRD_DIR / "kubeflow.org_common.yaml").read_text())["definitions"]
    result: dict[tuple[str, str], jsonschema.Draft7Validator] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if "schema" not in document:
            continue
        schema = copy.deepcopy(document["schema"])
        schema["definitions"] = {**common, **document.get("definitions", {})}
        validator = jsonschema.Draft7Validator(_closed(schema))
        result[(document["apiVersion"], document["kind"])] = validator
    return result


def _pod_templates(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    replica_specs = next((v for k, v in spec.items() if k.endswith("ReplicaSpecs")), None)
    if replica_specs is not None:
        return [replica["template"] for replica in replica_specs.values()]
    if obj["apiVersion"] == "serving.knative.dev/v1":
        return [spec["template"]]
    return []


def validate(objects: list[dict[str, Any]]) -> None:
    """Raise on the first object that does not pass its schema."""
    validators = crd_validators()
    for obj in objects:
        if obj["apiVersion"] in CORE_GROUPS:
            for version in K8S_VERSIONS:
                kubernetes_validate.validate(obj, version, strict=True)
            continue
        validator = validators.get((obj["apiVersion"], obj["kind"]))
        assert validator is not None, f"no schema for {obj['apiVersion']} {obj['kind']}"
        validator.validate(obj)
        for template in _pod_templates(obj):
            wrapped = {
                "apiVersion": "v1",
                "kind": "PodTemplate",
                "metadata": {"name": "template", "namespace": obj["metadata"]["namespace"]},
                "template": template,
            }
            for version in K8S_VERSIONS:
                kubernetes_validate.validate(wrapped, version, strict=True)
