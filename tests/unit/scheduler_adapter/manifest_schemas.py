"""Strict schema checks of rendered objects: core kinds with kubernetes-validate, custom
resources with jsonschema against the published CRDs in tests/data/crds (see its README)."""

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
    """``schema`` with every object that lists properties closed to other ones, as the API
    server prunes unknown fields: a field it would drop silently fails the test instead."""
    if isinstance(schema, dict):
        result = {key: _closed(value) for key, value in schema.items()}
        if (
            "properties" in result
            and "additionalProperties" not in result
            and not result.get("x-kubernetes-preserve-unknown-fields")
        ):
            result["additionalProperties"] = False
        return result
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


def crd_versions(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The openAPIV3Schema of every served version of the CRD in ``path``, by (apiVersion,
    kind)."""
    document = yaml.safe_load(path.read_text())
    group, kind = document["spec"]["group"], document["spec"]["names"]["kind"]
    return {
        (f"{group}/{version['name']}", kind): version["schema"]["openAPIV3Schema"]
        for version in document["spec"]["versions"]
        if version.get("served")
    }


@cache
def crd_validators() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    result: dict[tuple[str, str], jsonschema.Draft7Validator] = {}
    # The training-operator's own MPIJob (v1) is kept beside the mpi-operator's (v2beta1) to
    # show that the name is shared, not the version; berth renders the latter.
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for key, schema in crd_versions(path).items():
            result[key] = jsonschema.Draft7Validator(_closed(copy.deepcopy(schema)))
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
