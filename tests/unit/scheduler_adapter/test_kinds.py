"""Rendering choices that matter beyond the golden files, and how the simulated cluster and the
phase logic treat the new objects (Knative, scale-to-zero without Knative, owned objects)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from berth.contracts.capabilities import KnativeCapabilities
from berth.scheduler_adapter import labels
from berth.scheduler_adapter.backend import PodStatus, WorkloadSnapshot, top_object
from berth.scheduler_adapter.phases import derive_phase
from berth.scheduler_adapter.rendering import ClusterCapabilities, from_config, render
from berth.scheduler_adapter.rendering.inference import NO_SCALE_TO_ZERO
from tests.unit.scheduler_adapter.adapter_builders import ref, submission
from tests.unit.scheduler_adapter.adapter_recorder import simulated

pytestmark = pytest.mark.unit

KNATIVE = from_config({"knative": True})


def inference(
    name: str, autoscaling: dict[str, Any], capabilities: ClusterCapabilities, **spec: Any
) -> list[dict[str, Any]]:
    body = {"image": "img:1", "compute": {"gpuDevicesRequest": 1}, "autoscaling": autoscaling}
    body.update(spec)
    return render(
        ref(name, "inference"),
        submission("inference", name, body),
        trace_id=None,
        capabilities=capabilities,
    )


def template_annotations(service: dict[str, Any]) -> dict[str, str]:
    annotations: dict[str, str] = service["spec"]["template"]["metadata"]["annotations"]
    return annotations


@pytest.mark.parametrize(
    ("metric", "knative_class", "knative_metric"),
    [
        ("throughput", labels.KNATIVE_KPA, "rps"),
        ("concurrency", labels.KNATIVE_KPA, "concurrency"),
        ("latency", labels.KNATIVE_HPA, "latency"),
    ],
)
def test_each_metric_picks_its_autoscaler_class(
    metric: str, knative_class: str, knative_metric: str
) -> None:
    autoscaling = {"minReplicas": 1, "maxReplicas": 4, "metric": metric, "metricThreshold": 7}
    [service] = inference("inf", autoscaling, KNATIVE)
    annotations = template_annotations(service)
    assert annotations[labels.KNATIVE_CLASS] == knative_class
    assert annotations[labels.KNATIVE_METRIC] == knative_metric
    assert annotations[labels.KNATIVE_TARGET] == "7"
    assert (annotations[labels.KNATIVE_MIN_SCALE], annotations[labels.KNATIVE_MAX_SCALE]) == (
        "1",
        "4",
    )


@pytest.mark.parametrize(
    ("seconds", "period"), [(60, "1m"), (300, "5m"), (900, "15m"), (1800, "30m"), (45, "45s")]
)
def test_scale_to_zero_retention_is_a_knative_duration(seconds: int, period: str) -> None:
    autoscaling = {"minReplicas": 0, "scaleToZeroRetentionSeconds": seconds}
    [service] = inference("inf", autoscaling, KNATIVE)
    annotations = template_annotations(service)
    assert annotations[labels.KNATIVE_RETENTION] == period
    assert annotations[labels.KNATIVE_MIN_SCALE] == "0"
    assert annotations[labels.KNATIVE_MAX_SCALE] == "1"


def test_without_knative_scale_to_zero_runs_one_replica_and_says_so() -> None:
    deployment, service, hpa = inference(
        "inf", {"minReplicas": 0, "maxReplicas": 3, "metric": "concurrency"}, ClusterCapabilities()
    )
    assert deployment["kind"] == "Deployment" and deployment["spec"]["replicas"] == 1
    assert deployment["metadata"]["annotations"][labels.PHASE_NOTE_ANNOTATION] == NO_SCALE_TO_ZERO
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 3
    assert service["kind"] == "Service"
    # The note is the phase message while nothing more pressing is going on.
    running = WorkloadSnapshot(
        "wl-inf", "ns", True, (), (PodStatus("p", "Running", True, True),), 1, note="n"
    )
    assert derive_phase(running)[:2] == ("Running", "n")
    pending = WorkloadSnapshot(
        "wl-inf",
        "ns",
        True,
        (),
        (PodStatus("p", "Pending", False, False, "Unschedulable", "no room"),),
        1,
        note="n",
    )
    assert derive_phase(pending)[:2] == ("Pending", "no room")


def test_a_fixed_size_deployment_gets_no_autoscaler_nor_note() -> None:
    objects = inference("inf", {"minReplicas": 2}, ClusterCapabilities())
    assert [o["kind"] for o in objects] == ["Deployment", "Service"]
    assert labels.PHASE_NOTE_ANNOTATION not in objects[0]["metadata"]["annotations"]


def test_hugging_face_token_is_a_secret_reference_never_a_value() -> None:
    model = {"catalog": "huggingface", "modelName": "org/model", "credential": {"name": "hf"}}
    for capabilities in (KNATIVE, ClusterCapabilities()):
        objects = inference("inf", {"minReplicas": 1}, capabilities, model=model)
        top = top_object(objects)
        assert top is not None
        env = top["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "MODEL_NAME", "value": "org/model"} in env
        token = next(item for item in env if item["name"] == "HF_TOKEN")
        assert token == {
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "berth-cred-hf", "key": "token"}},
        }


def test_git_and_s3_credentials_are_secret_references() -> None:
    spec = {
        "image": "img:1",
        "storage": {
            "git": [
                {
                    "repository": "https://git.example/r.git",
                    "path": "/code",
                    "passwordSecret": "git-secret",
                    "revision": "abc123",
                }
            ],
            "s3": [{"bucket": "b", "path": "/data", "accessKeySecret": "s3-secret"}],
        },
    }
    [job] = render(ref("t"), submission("training", "t", spec), trace_id=None)
    text = json.dumps(job)
    assert "git-secret" in text and "s3-secret" in text
    init = job["spec"]["template"]["spec"]["initContainers"]
    clone = init[0]
    # A revision needs a full clone and a checkout.
    assert "--depth" not in clone["command"]
    assert 'checkout "$GIT_REVISION"' in clone["command"][2]
    assert {"name": "GIT_REVISION", "value": "abc123"} in clone["env"]
    sidecar = init[1]
    assert sidecar["restartPolicy"] == "Always"  # a native sidecar: the Job can still complete


def test_only_ephemeral_claims_are_owned_by_the_workload() -> None:
    claim = {"claimInfo": {"size": "1Gi"}}
    spec = {
        "image": "img:1",
        "storage": {
            "pvc": [
                {"name": "keep", "path": "/keep", **claim},
                {"name": "tmp", "path": "/tmp/x", "ephemeral": True, **claim},
            ]
        },
    }
    _, keep, tmp = render(ref("t"), submission("training", "t", spec), trace_id=None)
    assert "ownerReferences" not in keep["metadata"]
    assert tmp["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "t",
            "uid": "",
            "controller": False,
            "blockOwnerDeletion": True,
        }
    ]


async def test_simulated_cluster_runs_a_knative_service_and_scales_it_to_zero() -> None:
    async with simulated() as (cluster, rec):
        await cluster.apply(inference("kn", {"minReplicas": 1}, KNATIVE))
        await rec.wait_for("wl-kn", "Running")
        assert rec.last("wl-kn").expected_pods == 1
        await cluster.apply(inference("zero", {"minReplicas": 0}, KNATIVE))
        await rec.wait_for("wl-zero", "Running")
        assert derive_phase(rec.last("wl-zero"))[1] == "scaled to zero"


async def test_simulated_cluster_reports_the_scale_to_zero_note() -> None:
    async with simulated() as (cluster, rec):
        await cluster.apply(inference("dep", {"minReplicas": 0}, ClusterCapabilities()))
        await rec.wait_for("wl-dep", "Running")
        assert derive_phase(rec.last("wl-dep"))[1] == NO_SCALE_TO_ZERO


def test_dry_run_reflects_the_clusters_capabilities() -> None:
    assert KNATIVE.knative is not None
    assert KNATIVE.knative.allows("kubernetes.podspec-schedulername")
    assert from_config({}) == ClusterCapabilities()
    reported = ClusterCapabilities(knative=KnativeCapabilities(features={}))
    assert from_config({"knative": False, "capabilities": reported.model_dump()}) == reported
