"""GPUs a submission asks for, and whether it fits the project's deserved quota."""

from __future__ import annotations

from berth.intake import quota


def test_gpus_count_devices_portions_and_pods() -> None:
    assert quota.gpus({"kind": "training", "spec": {"compute": {"gpuDevicesRequest": 2}}}) == 2
    portion = {"gpuDevicesRequest": 1, "gpuRequestType": "portion", "gpuPortionRequest": 0.5}
    assert quota.gpus({"kind": "workspace", "spec": {"compute": portion}}) == 0.5
    distributed = {"numWorkers": 3, "compute": {"gpuDevicesRequest": 1}}
    assert quota.gpus({"kind": "distributed", "spec": distributed}) == 4
    assert quota.gpus({"kind": "distributed", "noMaster": True, "spec": distributed}) == 3
    assert quota.gpus({"kind": "inference", "spec": {}}) == 0


def test_deserved_adds_up_node_pools() -> None:
    pools = [{"nodePool": "a", "gpu": {"deserved": 2}}, {"nodePool": "b", "gpu": {"deserved": 1}}]
    assert quota.deserved(pools) == 3


def test_within_and_over_quota() -> None:
    assert quota.assess("p", 1, 1, 2) == (False, None)
    assert quota.assess("p", 2, 1, 2) == (
        True,
        "requests 2 GPU while project p uses 1 of its deserved 2",
    )
