from __future__ import annotations

import asyncio

import pytest

from berth.contracts.capabilities import KNATIVE_FEATURES, ClusterCapabilities
from berth.scheduler_adapter.backend import WorkloadSnapshot
from berth.scheduler_adapter.simulation import Inventory
from berth.scheduler_adapter.simulation.cluster import SimulatedCluster
from tests.unit.scheduler_adapter.adapter_builders import NAMESPACE, manifests
from tests.unit.scheduler_adapter.adapter_recorder import recording, simulated

pytestmark = pytest.mark.unit

LIFECYCLE = ["Creating", "Pending", "Initializing", "Running", "Completed"]
LONG = 100_000.0  # simulated seconds: "runs for the whole test"


def one_node(gpus: int = 8) -> Inventory:
    return Inventory.from_dict({"nodePools": [{"name": "pool", "nodes": 1, "gpusPerNode": gpus}]})


def unschedulable(snapshot: WorkloadSnapshot) -> bool:
    """The scheduler has looked at the workload's pods and found no room."""
    return any(pod.reason == "Unschedulable" for pod in snapshot.pods)


class ManualClock:
    """A clock the test moves by hand, in simulated seconds of a cluster running at SPEED."""

    # A power of two, so simulated times convert to clock readings and back exactly.
    SPEED = 1024.0

    def __init__(self) -> None:
        self.reading = 0.0

    def __call__(self) -> float:
        return self.reading

    def to(self, simulated_seconds: float) -> None:
        self.reading = simulated_seconds / self.SPEED


async def test_job_goes_through_every_phase() -> None:
    async with simulated() as (cluster, rec):
        await cluster.apply(manifests("training", "job", gpus=1, runtime=1))
        await rec.wait_for("wl-job", "Completed")
        assert rec.phases("wl-job") == LIFECYCLE
        assert rec.last("wl-job").conditions == (("Complete", "", ""),)
        # Created, the pod waits for the scheduler's next pass, with nothing wrong to report.
        created = next(s for s in rec.history["wl-job"] if s.pods)
        assert [(pod.scheduled, pod.reason, pod.node) for pod in created.pods] == [
            (False, "", None)
        ]


async def test_pod_larger_than_any_node_stays_pending_with_a_reason() -> None:
    async with simulated() as (cluster, rec):
        await cluster.apply(manifests("training", "huge", gpus=9))
        await rec.wait_until("wl-huge", unschedulable)
        await rec.settle()
        [pod] = rec.last("wl-huge").pods
        assert rec.phase("wl-huge") == "Pending"
        assert not pod.scheduled
        assert pod.reason == "Unschedulable"
        assert pod.message == "no node in pools a100,default has 9 free GPUs; most free: 8"


async def test_fractional_pods_share_gpus() -> None:
    async with simulated(one_node(gpus=2)) as (cluster, rec):
        for index in range(5):
            await cluster.apply(manifests("training", f"half-{index}", portion=0.5, runtime=LONG))
        for index in range(4):
            await rec.wait_for(f"wl-half-{index}", "Running")
        await rec.wait_until("wl-half-4", unschedulable)
        assert rec.phase("wl-half-4") == "Pending"
        message = rec.last("wl-half-4").pods[0].message
        assert message == "no node in pools pool has a GPU with 0.5 free; most free: 0 of a GPU"
        nodes = {rec.last(f"wl-half-{index}").pods[0].node for index in range(4)}
        assert nodes == {"pool-node-0"}


async def test_a_gang_that_does_not_fit_places_no_pod() -> None:
    async with simulated() as (cluster, rec):
        # 5 pods x 8 GPUs = 40 GPUs; the cluster has 32.
        await cluster.apply(manifests("distributed", "big", gpus=8, extra={"numWorkers": 4}))
        # 3 pods x 8 GPUs fit in the cluster but not in one 16-GPU pool.
        await cluster.apply(manifests("distributed", "wide", gpus=8, extra={"numWorkers": 2}))
        await rec.wait_for("wl-big", "Pending")
        await rec.wait_for("wl-wide", "Pending")
        # Capacity is untouched: a gang that fits one pool runs.
        await cluster.apply(
            manifests("distributed", "fits", gpus=8, runtime=LONG, extra={"numWorkers": 1})
        )
        await rec.wait_for("wl-fits", "Running")
        for workload_id in ("wl-big", "wl-wide"):
            assert rec.phase(workload_id) == "Pending"
            assert not any(pod.scheduled for s in rec.history[workload_id] for pod in s.pods)
        assert rec.last("wl-big").pods[0].message.startswith("gang of 5 pods needs 40 GPUs")
        pools = {pod.node.rsplit("-node-", 1)[0] for pod in rec.last("wl-fits").pods if pod.node}
        assert len(pools) == 1


async def test_node_pools_are_tried_in_priority_order() -> None:
    async with simulated() as (cluster, rec):
        for index in range(3):
            objects = manifests(
                "training", f"pref-{index}", gpus=8, pools=["default", "a100"], runtime=LONG
            )
            await cluster.apply(objects)
            await rec.wait_for(f"wl-pref-{index}", "Running")
        nodes = [rec.last(f"wl-pref-{index}").pods[0].node or "" for index in range(3)]
        assert [node.startswith("default-") for node in nodes] == [True, True, False]
        assert nodes[2].startswith("a100-")
        # Only "a100" allowed: it is full after one more, though "default" never had room.
        await cluster.apply(manifests("training", "only", gpus=8, pools=["a100"], runtime=LONG))
        await rec.wait_for("wl-only", "Running")
        await cluster.apply(manifests("training", "stuck", gpus=8, pools=["a100"]))
        await rec.wait_until("wl-stuck", unschedulable)
        message = rec.last("wl-stuck").pods[0].message
        assert message == "no node in pools a100 has 8 free GPUs; most free: 0"


async def test_pods_stay_unscheduled_until_the_next_scheduling_pass() -> None:
    clock = ManualClock()
    async with simulated(one_node(), speed=clock.SPEED, clock=clock, scheduling_interval=5.0) as (
        cluster,
        rec,
    ):
        await cluster.apply(manifests("training", "first", gpus=8, runtime=LONG))
        await rec.settle()
        assert rec.phases("wl-first") == ["Creating"]
        clock.to(0.1)  # the Job controller creates the pod
        await rec.wait_for("wl-first", "Pending")
        clock.to(4.9)
        await rec.settle()
        [pod] = rec.last("wl-first").pods
        assert (rec.phase("wl-first"), pod.scheduled, pod.reason) == ("Pending", False, "")
        clock.to(5.0)  # passes fall on multiples of the interval
        await rec.wait_for("wl-first", "Initializing")
        assert rec.last("wl-first").pods[0].node == "pool-node-0"

        await cluster.apply(manifests("training", "second", gpus=8, runtime=LONG))
        clock.to(6.0)
        await rec.wait_for("wl-first", "Running")
        await rec.wait_for("wl-second", "Pending")
        clock.to(9.9)
        await rec.settle()
        assert rec.last("wl-second").pods[0].reason == ""  # not yet looked at
        clock.to(10.0)
        await rec.wait_until("wl-second", unschedulable)

        # Freed capacity is taken at the next pass, not at once.
        clock.to(12.0)
        await cluster.delete(NAMESPACE, "wl-first")
        await rec.wait_for("wl-first", "Deleted")
        clock.to(14.9)
        await rec.settle()
        assert rec.phase("wl-second") == "Pending"
        clock.to(15.0)
        await rec.wait_for("wl-second", "Initializing")
        assert rec.phases("wl-second") == ["Creating", "Pending", "Initializing"]


async def test_a_pass_places_higher_priority_workloads_first() -> None:
    async with simulated(one_node()) as (cluster, rec):
        await cluster.apply(manifests("training", "blocker", gpus=8, runtime=LONG))
        await rec.wait_for("wl-blocker", "Running")
        # A training asks for no priority class (priority 0); a workspace defaults to "build".
        await cluster.apply(manifests("training", "early", gpus=8, runtime=LONG))
        await rec.wait_until("wl-early", unschedulable)
        await cluster.apply(manifests("workspace", "late", gpus=8))
        await rec.wait_until("wl-late", unschedulable)
        await cluster.delete(NAMESPACE, "wl-blocker")
        await rec.wait_for("wl-late", "Running")
        await rec.settle()
        assert rec.phase("wl-early") == "Pending"


def test_the_scheduling_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="scheduling_interval"):
        SimulatedCluster(one_node(), scheduling_interval=0)


async def test_crashing_job_retries_up_to_its_backoff_limit_then_fails() -> None:
    async with simulated() as (cluster, rec):
        objects = manifests(
            "training", "crash", gpus=1, runtime=0.5, fail="crash", extra={"backoffLimit": 2}
        )
        await cluster.apply(objects)
        await rec.wait_for("wl-crash", "Failed", timeout=10)
        assert rec.phases("wl-crash").count("Running") == 3
        condition = rec.last("wl-crash").conditions[-1]
        assert condition[:2] == ("Failed", "BackoffLimitExceeded")


async def test_ttl_deletes_a_finished_job() -> None:
    async with simulated() as (cluster, rec):
        objects = manifests(
            "training",
            "short",
            gpus=1,
            runtime=1,
            extra={"autoDeletionTimeAfterCompletionSeconds": 5},
        )
        await cluster.apply(objects)
        await rec.wait_for("wl-short", "Deleted")
        assert rec.phases("wl-short")[-2:] == ["Completed", "Deleted"]
        assert rec.last("wl-short").exists is False
        assert cluster.workload_count == 0


async def test_suspend_frees_capacity_and_resume_takes_it_back() -> None:
    async with simulated(one_node()) as (cluster, rec):
        await cluster.apply(manifests("workspace", "first", gpus=8))
        await rec.wait_for("wl-first", "Running")
        await cluster.apply(manifests("workspace", "second", gpus=8))
        await rec.wait_for("wl-second", "Pending")

        await cluster.suspend(NAMESPACE, "wl-first")
        await rec.wait_for("wl-first", "Stopped")
        await rec.wait_for("wl-second", "Running")
        assert rec.phases("wl-first")[-2:] == ["Stopping", "Stopped"]
        assert rec.last("wl-first").suspended

        await cluster.resume(NAMESPACE, "wl-first")
        await rec.wait_for("wl-first", "Pending")
        await cluster.delete(NAMESPACE, "wl-second")
        await rec.wait_for("wl-first", "Running")
        assert rec.phases("wl-first")[-4:] == ["Creating", "Pending", "Initializing", "Running"]


async def test_delete_removes_everything() -> None:
    async with simulated(one_node()) as (cluster, rec):
        await cluster.apply(manifests("training", "gone", gpus=8, runtime=LONG))
        await rec.wait_for("wl-gone", "Running")
        await cluster.apply(manifests("training", "next", gpus=8, runtime=LONG))
        await rec.wait_for("wl-next", "Pending")
        await cluster.delete(NAMESPACE, "wl-gone")
        await rec.wait_for("wl-gone", "Deleted")
        assert rec.last("wl-gone").exists is False
        await rec.wait_for("wl-next", "Running")
        await cluster.delete(NAMESPACE, "wl-unknown")  # a no-op


async def test_image_pull_failure_ends_failed() -> None:
    async with simulated() as (cluster, rec):
        await cluster.apply(manifests("training", "pull", gpus=1, fail="image-pull"))
        await rec.wait_for("wl-pull", "Failed")
        reasons = [s.pods[0].reason for s in rec.history["wl-pull"] if s.pods]
        assert "ErrImagePull" in reasons
        assert rec.last("wl-pull").pods[0].reason == "ImagePullBackOff"
        assert (
            rec.last("wl-pull").pods[0].message
            == 'Back-off pulling image "registry.example/train:1"'
        )


async def test_workspaces_and_inference_run_until_stopped() -> None:
    async with simulated() as (cluster, rec):
        await cluster.apply(manifests("workspace", "ws", gpus=1))
        await cluster.apply(manifests("inference", "inf", gpus=1))
        await rec.wait_for("wl-ws", "Running")
        await rec.wait_for("wl-inf", "Running")
        await rec.settle(0.1)  # 100 simulated seconds
        assert (rec.phase("wl-ws"), rec.phase("wl-inf")) == ("Running", "Running")


async def test_a_crashing_workspace_crash_loops() -> None:
    async with simulated() as (cluster, rec):
        await cluster.apply(manifests("workspace", "loop", gpus=1, runtime=1, fail="crash"))
        await rec.wait_for("wl-loop", "Failed")
        assert rec.last("wl-loop").pods[0].reason == "CrashLoopBackOff"
        await rec.wait_for("wl-loop", "Running")  # the kubelet restarts it after a back-off


async def test_a_new_subscriber_gets_every_known_workload_first() -> None:
    async with simulated() as (cluster, rec):
        for index in range(3):
            await cluster.apply(manifests("training", f"known-{index}", gpus=1, runtime=LONG))
        await rec.wait_for("wl-known-2", "Running")
        async with recording(cluster) as late:
            await late.wait_for("wl-known-0", "Running")
            assert set(late.history) == {"wl-known-0", "wl-known-1", "wl-known-2"}


async def test_apply_is_idempotent() -> None:
    async with simulated() as (cluster, rec):
        objects = manifests("workspace", "same", gpus=1)
        await cluster.apply(objects)
        await rec.wait_for("wl-same", "Running")
        count = len(rec.history["wl-same"])
        await cluster.apply(objects)
        await rec.settle()
        assert len(rec.history["wl-same"]) == count


async def test_a_changed_template_rolls_the_pods() -> None:
    async with simulated() as (cluster, rec):
        await cluster.apply(manifests("workspace", "roll", gpus=1))
        await rec.wait_for("wl-roll", "Running")
        await cluster.apply(manifests("workspace", "roll", gpus=2))
        await rec.wait_for("wl-roll", "Creating")
        await rec.wait_for("wl-roll", "Running")
        assert rec.last("wl-roll").pods[0].scheduled


async def test_apply_rejects_objects_without_identity_and_changes_nothing() -> None:
    async with simulated() as (cluster, _):
        good = manifests("training", "good", gpus=1)
        bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
        with pytest.raises(ValueError, match=r"berth\.dev/workload-id"):
            await cluster.apply([*good, bad])
        assert cluster.workload_count == 0


async def test_snapshot_batches_are_bounded() -> None:
    async with simulated(batch_size=10) as (cluster, rec):
        objects = [obj for i in range(50) for obj in manifests("training", f"b-{i}", runtime=1)]
        await cluster.apply(objects)
        for index in range(50):
            await rec.wait_for(f"wl-b-{index}", "Completed")
        assert max(rec.batches) <= 10


async def test_an_elastic_pytorch_gang_is_its_min_replicas_as_kai_groups_it() -> None:
    # KAI's PyTorch plugin sets the PodGroup's minAvailable to elasticPolicy.minReplicas, so
    # the job starts once that many pods fit; the rest follow as room frees up.
    elastic = {"numWorkers": 3, "minReplicas": 1, "maxReplicas": 3}
    fixed = {"numWorkers": 3}
    async with simulated(one_node(8)) as (cluster, rec):
        await cluster.apply(manifests("distributed", "rigid", gpus=4, runtime=LONG, extra=fixed))
        await rec.wait_until("wl-rigid", unschedulable)
        assert not any(pod.scheduled for pod in rec.last("wl-rigid").pods)
        await cluster.delete(NAMESPACE, "wl-rigid")
        await cluster.apply(manifests("distributed", "el", gpus=4, runtime=LONG, extra=elastic))
        await rec.wait_until(
            "wl-el", lambda s: sum(pod.scheduled for pod in s.pods) == 2 and unschedulable(s)
        )


async def test_config_reads_and_patches() -> None:
    cluster_config = {
        "workloadOwnershipProtection": False,
        "knative": False,
        "clusterVersion": "1.29.0",
        "nodePools": ["a100", "default"],
        "gpus": 32,
        "capabilities": Inventory.default().default_capabilities().model_dump(mode="json"),
    }
    async with simulated() as (cluster, _):
        assert await cluster.read_config() == cluster_config
        await cluster.set_config({"workloadOwnershipProtection": True})
        assert (await cluster.read_config())["workloadOwnershipProtection"] is True
        with pytest.raises(ValueError, match="gpus"):
            await cluster.set_config({"gpus": 1})
        with pytest.raises(ValueError, match="capabilities"):
            await cluster.set_config({"capabilities": {}})


def test_inventory_from_yaml_and_sizes() -> None:
    inventory = Inventory.from_yaml(
        """
        cluster: {knative: true, version: "1.31.2", region: eu}
        nodePools:
          - {name: h100, nodeType: H100, nodes: 3, gpusPerNode: 4, cpu: 96, memory: 1Ti}
          - {name: cpu, label: cpu-only, nodes: 2, gpusPerNode: 0}
        """
    )
    assert inventory.gpus == 12
    assert [pool.label_value for pool in inventory.node_pools] == ["h100", "cpu-only"]
    config = inventory.config()
    capabilities = ClusterCapabilities.model_validate(config.pop("capabilities"))
    assert config == {
        "region": "eu",
        "workloadOwnershipProtection": False,
        "knative": True,
        "clusterVersion": "1.31.2",
    }
    # By default: KAI with a shard per pool (and the default one), Knative with berth's flags.
    assert capabilities.kai.shards == ["", "h100", "cpu-only"]
    assert capabilities.knative is not None
    assert capabilities.knative.features == KNATIVE_FEATURES
    assert capabilities.workloadApis["MPIJob"] == "kubeflow.org/v2beta1"
    # A profile without Knative and with the training-operator's MPIJob only.
    plain = Inventory.from_dict(
        {
            "nodePools": [{"name": "a"}],
            "capabilities": {"workloadApis": {"PyTorchJob": "kubeflow.org/v1"}},
        }
    )
    reported = ClusterCapabilities.model_validate(plain.config()["capabilities"])
    assert reported.knative is None
    assert reported.workloadApis == {"PyTorchJob": "kubeflow.org/v1"}
    assert Inventory.default().gpus == 32
    assert Inventory.default(nodes_per_pool=10, gpus_per_node=4).gpus == 80
    with pytest.raises(ValueError, match="gpuPerNode"):
        Inventory.from_dict({"nodePools": [{"name": "x", "gpuPerNode": 8}]})


async def test_thousands_of_workloads_flow_through_a_large_cluster() -> None:
    count = 5000
    objects = [manifests("training", f"bulk-{i}", gpus=1, runtime=10) for i in range(count)]
    async with simulated(Inventory.default(nodes_per_pool=200), speed=200) as (cluster, rec):
        for index in range(0, count, 500):
            await cluster.apply([obj for batch in objects[index : index + 500] for obj in batch])
            await asyncio.sleep(0)
        for index in range(count):
            await rec.wait_for(f"wl-bulk-{index}", "Completed", timeout=30)
        assert rec.phases("wl-bulk-4999") == LIFECYCLE
    # How long this takes is measured by bench/simulator_bench.py, not asserted here.


@pytest.mark.parametrize("runtime", [float("nan"), float("inf"), -5.0, 1e300])
async def test_an_unusable_runtime_fails_its_workload_only(runtime: float) -> None:
    """A NaN runtime used to never end and spin the scheduling loop; now the workload is
    refused (Failed, with the reason) and the others applied with it run."""
    from berth.shared.errors import PermanentError

    async with simulated() as (cluster, rec):
        good = manifests("training", "fine", gpus=1, runtime=1)
        bad = manifests("training", "bad-runtime", gpus=1, runtime=runtime)
        with pytest.raises(PermanentError, match="sim-runtime-seconds"):
            await cluster.apply([*bad, *good])
        await rec.wait_for("wl-fine", "Completed")
        await rec.wait_for("wl-bad-runtime", "Failed")
        assert "sim-runtime-seconds" in rec.last("wl-bad-runtime").conditions[0][2]
        assert cluster.workload_count == 1


async def test_its_listing_holds_every_object_it_was_given_of_any_kind() -> None:
    cluster = SimulatedCluster(Inventory.default())
    tools = {"ports": [{"container": 8888, "toolType": "jupyter-notebook"}]}
    workspace = manifests("workspace", "listed", extra=tools)
    assert len(workspace) > 1
    empty = await cluster.listed()
    assert not any(empty.holds(o) for o in workspace)
    await cluster.apply(workspace)
    listing = await cluster.listed()
    assert all(listing.holds(o) for o in workspace)
    assert not listing.holds(manifests("training", "other")[0])
