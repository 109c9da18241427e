"""One table of top-level kinds serves both cluster backends."""

from __future__ import annotations

import pytest

from berth.scheduler_adapter.backend import top_object
from berth.scheduler_adapter.top_kinds import KUBEFLOW_KINDS, expected_pods, top_kind
from tests.unit.scheduler_adapter.adapter_builders import manifests

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("kind", "extra", "top", "pods", "suspend", "success"),
    [
        ("training", {}, {}, 1, "spec.suspend", "Complete"),
        ("workspace", {}, {}, 1, "spec.replicas", None),
        ("inference", {}, {}, 1, "spec.replicas", None),
        (
            "distributed",
            {"distributedFramework": "PyTorch", "numWorkers": 3},
            {},
            4,
            "spec.runPolicy.suspend",
            "Succeeded",
        ),
    ],
)
def test_each_rendered_top_object_says_its_pods_suspend_path_and_success(
    kind: str,
    extra: dict[str, object],
    top: dict[str, object],
    pods: int,
    suspend: str | None,
    success: str | None,
) -> None:
    obj = top_object(manifests(kind, "w", extra=extra, top=top))
    assert obj is not None
    described = top_kind(obj)
    assert described is not None
    assert expected_pods(obj) == pods
    assert described.suspend == suspend
    assert described.success_condition == success


def test_a_knative_service_is_a_top_object_and_a_core_service_is_not() -> None:
    knative = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {}}
    core = {"apiVersion": "v1", "kind": "Service", "metadata": {}}
    assert top_kind(knative) is not None and top_kind(knative).suspend is None  # type: ignore[union-attr]
    assert top_kind(core) is None


def test_the_kubeflow_kinds() -> None:
    assert {"PyTorchJob", "TFJob", "MPIJob", "XGBoostJob"} == KUBEFLOW_KINDS
