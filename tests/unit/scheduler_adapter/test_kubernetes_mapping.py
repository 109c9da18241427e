"""How the kubernetes backend reads API objects into snapshots and API errors into berth errors
(pure parts; the API round trips are in tests/integration/scheduler_adapter)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.client.exceptions import ApiException

from berth.scheduler_adapter.kubernetes import (
    APPLY_QUERY,
    FIELD_MANAGER,
    _PlainApiClient,
    pod_status,
    snapshot_of,
    translate,
)
from berth.scheduler_adapter.phases import derive_phase
from berth.scheduler_adapter.top_kinds import expected_pods
from berth.shared.errors import PermanentError, TransientError

pytestmark = pytest.mark.unit


def pod(name: str, phase: str, conditions: dict[str, str], **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"berth.dev/workload-id": "wl"}},
        "spec": {"nodeName": "n1"} if conditions.get("PodScheduled") == "True" else {},
        "status": {
            "phase": phase,
            "conditions": [{"type": k, "status": v} for k, v in conditions.items()],
            **status,
        },
    }


JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "j", "annotations": {}},
    "spec": {"parallelism": 2},
}


def test_an_unschedulable_pod_carries_the_schedulers_reason() -> None:
    unscheduled = pod("p", "Pending", {"PodScheduled": "False"})
    unscheduled["status"]["conditions"][0].update(reason="Unschedulable", message="no GPUs")
    status = pod_status(unscheduled)
    assert (status.scheduled, status.reason, status.message) == (False, "Unschedulable", "no GPUs")


def test_a_waiting_container_reason_is_the_pods_reason() -> None:
    waiting = {"name": "c", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "x"}}}
    status = pod_status(pod("p", "Pending", {"PodScheduled": "True"}, containerStatuses=[waiting]))
    assert (status.scheduled, status.ready, status.reason, status.node) == (
        True,
        False,
        "ImagePullBackOff",
        "n1",
    )
    snapshot = snapshot_of(
        "wl",
        "ns",
        JOB,
        [pod("p", "Pending", {"PodScheduled": "True"}, containerStatuses=[waiting])],
    )
    assert derive_phase(snapshot)[0] == "Failed"


def test_snapshot_of_reads_conditions_suspension_and_deletion() -> None:
    job = {
        **JOB,
        "metadata": {
            "name": "j",
            "annotations": {"berth.dev/suspended": "true"},
            "deletionTimestamp": "2026-01-01T00:00:00Z",
        },
        "status": {
            "conditions": [
                {"type": "Suspended", "status": "True", "reason": "JobSuspended"},
                {"type": "Complete", "status": "False"},
            ]
        },
    }
    snapshot = snapshot_of("wl", "ns", job, [])
    assert snapshot.conditions == (("Suspended", "JobSuspended", ""),)
    assert snapshot.suspended and snapshot.deleting and snapshot.expected_pods == 2
    assert derive_phase(snapshot)[0] == "Deleting"
    assert derive_phase(snapshot_of("wl", "ns", None, []))[0] == "Deleted"


def test_expected_pods_per_kind() -> None:
    assert expected_pods({"apiVersion": "batch/v1", "kind": "Job", "spec": {}}) == 1
    assert (
        expected_pods({"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"replicas": 1}})
        == 1
    )
    kubeflow = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": 1}, "Worker": {"replicas": 4}}},
    }
    assert expected_pods(kubeflow) == 5
    knative = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "spec": {
            "template": {"metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "0"}}}
        },
    }
    assert expected_pods(knative) == 0


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, TransientError),
        (500, TransientError),
        (503, TransientError),
        (408, TransientError),
        (400, PermanentError),
        (403, PermanentError),
        (409, PermanentError),
        (422, PermanentError),
    ],
)
def test_api_statuses_become_berth_errors(status: int, kind: type[Exception]) -> None:
    error = ApiException(status=status, reason="Reason")
    error.body = b'{"message": "what the server said"}'
    translated = translate(error, "apply Job ns/j")
    assert isinstance(translated, kind)
    assert str(translated) == f"apply Job ns/j: {status} what the server said"


def test_transport_failures_are_transient() -> None:
    assert isinstance(translate(aiohttp.ClientConnectionError("refused"), "x"), TransientError)
    assert isinstance(translate(TimeoutError(), "x"), TransientError)


async def test_the_api_clients_session_takes_its_proxy_from_the_environment_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Read per request, the environment cost two thread hops for every apply (netrc, proxies).
    monkeypatch.setenv("HTTPS_PROXY", "http://user:secret@proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    configuration = Configuration(host="https://api.cluster.example:6443")
    client = _PlainApiClient(configuration)
    try:
        assert client.rest_client.pool_manager.trust_env is False
        assert client.rest_client.proxy == "http://proxy.example:3128"
        expected = aiohttp.BasicAuth("user", "secret").encode()
        assert client.rest_client.proxy_headers["Proxy-Authorization"] == expected
    finally:
        await client.close()


async def test_no_proxy_and_a_configured_proxy_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "api.cluster.example")
    bypassed = _PlainApiClient(Configuration(host="https://api.cluster.example:6443"))
    monkeypatch.delenv("NO_PROXY")
    configuration = Configuration(host="https://api.cluster.example:6443")
    configuration.proxy = "http://configured.example:8080"
    configured = _PlainApiClient(configuration)
    try:
        assert not bypassed.rest_client.proxy
        assert configured.rest_client.proxy == "http://configured.example:8080"
    finally:
        await bypassed.close()
        await configured.close()


def test_an_apply_query_names_the_field_manager_and_forces() -> None:
    query = parse_qs(urlsplit(APPLY_QUERY).query, strict_parsing=True)
    assert query == {"fieldManager": [FIELD_MANAGER], "force": ["true"]}
