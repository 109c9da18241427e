"""Validation of workload submissions: bounds, unknown fields, and cross-field rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from berth.contracts.spec.base import SYSTEM_DEFAULT_KEY
from berth.contracts.spec.storage import HostPath
from berth.contracts.workload import (
    DEFAULT_AUTO_DELETION_SECONDS,
    DEFAULT_BACKOFF_LIMIT,
    CommonSpec,
    DistributedSubmission,
    EnvironmentVariable,
    InferenceSubmission,
    NameValue,
    WorkloadSubmission,
    WorkspaceSpec,
    WorkspaceSubmission,
    applicable_system_defaults,
    requested_gpus,
)

pytestmark = pytest.mark.unit

ADAPTER: TypeAdapter[WorkloadSubmission] = TypeAdapter(WorkloadSubmission)


def submission(kind: str, spec: dict[str, Any] | None = None, **envelope: Any) -> dict[str, Any]:
    return {"name": "w1", "projectId": "team-a", "kind": kind, "spec": spec or {}, **envelope}


def validate(kind: str, spec: dict[str, Any] | None = None, **envelope: Any) -> Any:
    return ADAPTER.validate_python(submission(kind, spec, **envelope))


def issues(kind: str, spec: dict[str, Any] | None = None, **envelope: Any) -> list[str]:
    """Every error as "dotted.field: message", without the union's kind tag."""
    with pytest.raises(ValidationError) as caught:
        validate(kind, spec, **envelope)
    return [
        f"{'.'.join(str(part) for part in error['loc'][1:])}: {error['msg']}"
        for error in caught.value.errors()
    ]


def only_issue(kind: str, spec: dict[str, Any] | None = None, **envelope: Any) -> str:
    found = issues(kind, spec, **envelope)
    assert len(found) == 1, found
    return found[0]


# --- the samples and the basics -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["workspace", "training", "distributed", "inference"])
def test_sample_submissions_are_valid(
    kind: str, sample_submissions: dict[str, dict[str, Any]]
) -> None:
    parsed = ADAPTER.validate_python(sample_submissions[kind])

    assert parsed.kind == kind
    assert parsed.spec.image


@pytest.mark.parametrize("kind", ["workspace", "training", "distributed", "inference"])
def test_unset_spec_fields_stay_none(kind: str) -> None:
    parsed = validate(kind, {"image": "busybox"})

    assert parsed.spec.model_fields_set == {"image"}
    assert parsed.spec.compute is None
    assert parsed.spec.autoDeletionTimeAfterCompletionSeconds is None
    if kind != "inference":
        assert parsed.spec.backoffLimit is None


def test_submissions_are_frozen() -> None:
    parsed = validate("workspace", {"image": "busybox"})

    with pytest.raises(ValidationError, match="frozen"):
        parsed.spec.image = "other"  # type: ignore[misc]


def test_asset_references_are_optional_names() -> None:
    parsed = validate("workspace", template="tpl", environment="jupyter", compute="half-gpu")

    assert (parsed.template, parsed.environment, parsed.compute) == ("tpl", "jupyter", "half-gpu")


def test_name_must_be_a_dns_label() -> None:
    assert only_issue("workspace", name="My_Workload").startswith("name: String should match")


def test_kind_must_be_known() -> None:
    with pytest.raises(ValidationError, match="workspace', 'training', 'distributed'"):
        ADAPTER.validate_python(submission("batch"))


# --- bounds ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["workspace", "training", "distributed"])
@pytest.mark.parametrize("value", [-1, 101])
def test_backoff_limit_outside_0_to_100_is_rejected(kind: str, value: int) -> None:
    assert only_issue(kind, {"backoffLimit": value}).startswith("spec.backoffLimit: Input should")


@pytest.mark.parametrize("value", [0, 100])
def test_backoff_limit_bounds_are_inclusive(value: int) -> None:
    assert validate("training", {"backoffLimit": value}).spec.backoffLimit == value


def test_inference_has_no_backoff_limit() -> None:
    assert only_issue("inference", {"backoffLimit": 3}) == (
        "spec.backoffLimit: Extra inputs are not permitted"
    )


def test_auto_deletion_must_not_be_negative() -> None:
    assert only_issue("workspace", {"autoDeletionTimeAfterCompletionSeconds": -1}).startswith(
        "spec.autoDeletionTimeAfterCompletionSeconds: Input should be greater than or equal to 0"
    )
    assert validate("inference", {"autoDeletionTimeAfterCompletionSeconds": 0})


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"compute": {"gpuPortionRequest": 1.5}}, "spec.compute.gpuPortionRequest"),
        ({"compute": {"gpuPortionRequest": 0}}, "spec.compute.gpuPortionRequest"),
        ({"compute": {"gpuDevicesRequest": -1}}, "spec.compute.gpuDevicesRequest"),
        ({"compute": {"cpuCoreRequest": 0}}, "spec.compute.cpuCoreRequest"),
        ({"ports": [{"container": 70000}]}, "spec.ports.0.container"),
        ({"security": {"runAsUid": -1}}, "spec.security.runAsUid"),
    ],
)
def test_numeric_bounds_name_the_field(spec: dict[str, Any], field: str) -> None:
    assert only_issue("workspace", spec).startswith(f"{field}: Input should")


# --- unknown fields --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "spec", "envelope", "field"),
    [
        ("spec", {"gpus": 1}, {}, "spec.gpus"),
        ("compute", {"compute": {"gpuCount": 1}}, {}, "spec.compute.gpuCount"),
        ("envelope", {}, {"owner": "me"}, "owner"),
        ("list item", {"labels": [{"name": "a", "colour": "b"}]}, {}, "spec.labels.0.colour"),
        (
            "s3 secret",
            {"storage": {"s3": [{"bucket": "b", "path": "/b", "secretKey": "s"}]}},
            {},
            "spec.storage.s3.0.secretKey",
        ),
    ],
)
def test_unknown_fields_are_rejected_by_name(
    where: str, spec: dict[str, Any], envelope: dict[str, Any], field: str
) -> None:
    assert only_issue("workspace", spec, **envelope) == f"{field}: Extra inputs are not permitted"


def test_master_spec_has_no_worker_only_fields() -> None:
    found = only_issue(
        "distributed", {}, masterSpecSameAsWorker=False, masterSpec={"numWorkers": 2}
    )
    assert found == "masterSpec.numWorkers: Extra inputs are not permitted"


def test_inference_accepts_only_its_storage_and_security_subset() -> None:
    found = issues(
        "inference",
        {
            "storage": {"nfs": [{"server": "s", "path": "/x", "mountPath": "/x"}]},
            "security": {"hostNetwork": True},
        },
    )
    assert found == [
        "spec.storage.nfs: Extra inputs are not permitted",
        "spec.security.hostNetwork: Extra inputs are not permitted",
    ]


# --- GPU and CPU compute ---------------------------------------------------------------------


def gpu(**compute: Any) -> dict[str, Any]:
    return {"compute": compute}


def test_gpu_portion_needs_exactly_one_device() -> None:
    found = only_issue("workspace", gpu(gpuDevicesRequest=2, gpuPortionRequest=0.5))
    assert found == (
        "spec.compute: Value error, gpuPortionRequest requires gpuDevicesRequest == 1 (got 2)"
    )
    assert validate("workspace", gpu(gpuDevicesRequest=1, gpuPortionRequest=0.5))


def test_gpu_portion_may_leave_devices_to_a_policy_default() -> None:
    assert validate("workspace", gpu(gpuPortionRequest=0.5)).spec.compute.gpuDevicesRequest is None


def test_gpu_request_type_needs_exactly_one_device() -> None:
    found = only_issue("training", gpu(gpuDevicesRequest=0, gpuRequestType="memory"))
    assert "gpuRequestType requires gpuDevicesRequest == 1 (got 0)" in found


def test_gpu_portion_limit_must_cover_the_request() -> None:
    found = only_issue(
        "workspace", gpu(gpuDevicesRequest=1, gpuPortionRequest=0.5, gpuPortionLimit=0.25)
    )
    assert found.endswith("gpuPortionLimit must be >= gpuPortionRequest")
    assert validate("workspace", gpu(gpuPortionRequest=0.5, gpuPortionLimit=0.5))


def test_gpu_request_type_excludes_the_other_units() -> None:
    found = only_issue(
        "workspace", gpu(gpuDevicesRequest=1, gpuRequestType="portion", gpuMemoryRequest="10G")
    )
    assert found.endswith("gpuMemoryRequest is not allowed with gpuRequestType 'portion'")


def test_gpu_portion_and_memory_are_mutually_exclusive() -> None:
    found = only_issue("workspace", gpu(gpuPortionRequest=0.5, gpuMemoryRequest="10G"))
    assert found.endswith("gpuPortionRequest and gpuMemoryRequest are mutually exclusive")


def test_mig_profile_is_one_of_the_known_profiles() -> None:
    assert validate("workspace", gpu(gpuDevicesRequest=1, migProfile="1g.10gb"))
    assert only_issue("workspace", gpu(migProfile="9g.1tb")).startswith(
        "spec.compute.migProfile: Input should be"
    )


@pytest.mark.parametrize(
    ("compute", "message"),
    [
        ({"gpuMemoryRequest": "1Gi", "gpuMemoryLimit": "1G"}, "gpuMemoryLimit must be >="),
        ({"cpuMemoryRequest": "2G", "cpuMemoryLimit": "1500M"}, "cpuMemoryLimit must be >="),
        ({"cpuCoreRequest": 2, "cpuCoreLimit": 1}, "cpuCoreLimit must be >= cpuCoreRequest"),
    ],
)
def test_limits_must_cover_requests_across_units(compute: dict[str, Any], message: str) -> None:
    assert message in only_issue("workspace", {"compute": compute})


def test_every_compute_problem_is_named_at_once_in_order() -> None:
    compute = {
        "gpuDevicesRequest": 2,
        "gpuRequestType": "portion",
        "gpuMemoryRequest": "10G",
        "cpuCoreRequest": 2,
        "cpuCoreLimit": 1,
        "extendedResources": [{"resource": "x.example/nic"}, {"resource": "x.example/nic"}],
    }
    assert only_issue("workspace", {"compute": compute}) == (
        "spec.compute: Value error, gpuRequestType requires gpuDevicesRequest == 1 (got 2); "
        "gpuMemoryRequest requires gpuDevicesRequest == 1 (got 2); "
        "gpuMemoryRequest is not allowed with gpuRequestType 'portion'; "
        "cpuCoreLimit must be >= cpuCoreRequest; "
        "extendedResources lists 'x.example/nic' twice"
    )


def test_whole_gpus_and_single_items_pass_the_cross_field_checks() -> None:
    spec = {
        "compute": {"gpuDevicesRequest": 4, "cpuCoreRequest": 1, "cpuCoreLimit": 1},
        "nodePools": ["a"],
        "labels": [{"name": "x"}],
        "environmentVariables": [],
    }
    assert validate("training", spec).spec.compute.gpuDevicesRequest == 4


def test_memory_must_be_a_quantity() -> None:
    assert only_issue("workspace", gpu(cpuMemoryRequest="8 gigs")) == (
        "spec.compute.cpuMemoryRequest: Value error, '8 gigs' is not a quantity "
        "(e.g. 8G, 16Gi, 500M)"
    )


# --- environment and tools -------------------------------------------------------------------


def test_exposed_url_access_is_users_or_groups_not_both() -> None:
    url = {"container": 8888, "authorizedUsers": ["a@x.org"], "authorizedGroups": ["g"]}

    assert only_issue("workspace", {"exposedUrls": [url]}) == (
        "spec.exposedUrls.0: Value error, "
        "authorizedUsers and authorizedGroups are mutually exclusive"
    )
    assert validate("workspace", {"exposedUrls": [{"container": 8888}]})  # everyone
    assert validate("workspace", {"exposedUrls": [{"container": 8888, "authorizedUsers": ["a"]}]})


def test_environment_variable_is_a_value_or_a_credential_key() -> None:
    both = {"name": "T", "value": "x", "credential": {"name": "tok", "key": "token"}}

    assert "T: value and credential are mutually exclusive" in only_issue(
        "training", {"environmentVariables": [both]}
    )


def test_credential_reference_cannot_carry_a_token() -> None:
    env = {"name": "HF_TOKEN", "credential": {"name": "hf_AbCdEf123", "key": "token"}}

    assert only_issue("training", {"environmentVariables": [env]}).startswith(
        "spec.environmentVariables.0.credential.name: String should match pattern"
    )


def test_name_value_items_are_accepted_as_environment_variables() -> None:
    spec = CommonSpec(environmentVariables=[NameValue(name="A", value="1")])  # type: ignore[list-item]

    assert spec.environmentVariables == [EnvironmentVariable(name="A", value="1")]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"nodePools": ["a", "b", "a"]}, "nodePools lists 'a' twice"),
        ({"labels": [{"name": "x"}, {"name": "x"}]}, "labels has two items named 'x'"),
        ({"tty": True}, "tty requires stdin true"),
        (
            {"security": {"uidGidSource": "fromTheImage", "runAsUid": 1000}},
            "runAsUid requires uidGidSource 'custom' or 'fromIdpToken'",
        ),
        (
            {"tolerations": [{"name": "t", "operator": "Exists", "value": "v"}]},
            "value must be unset when operator is 'Exists'",
        ),
        (
            {"tolerations": [{"name": "t", "key": "k", "effect": "NoSchedule", "seconds": 5}]},
            "seconds requires effect 'NoExecute'",
        ),
        ({"allowOverQuota": True, "priorityClass": "build"}, "allowOverQuota requires priority"),
    ],
)
def test_cross_field_rules_of_the_common_spec(spec: dict[str, Any], message: str) -> None:
    assert message in only_issue("workspace", spec)


# --- storage ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ({"pvc": [{"existingPvc": True, "path": "/d"}]}, "claimName is required when existing"),
        (
            {"pvc": [{"existingPvc": True, "claimName": "c", "path": "/d", "claimInfo": {}}]},
            "claimInfo is not allowed when existingPvc is true",
        ),
        (
            {
                "pvc": [{"claimName": "a", "path": "/data"}],
                "nfs": [{"server": "s", "path": "/e", "mountPath": "/data"}],
            },
            "'/data' is mounted twice",
        ),
        (
            {"git": [{"repository": "https://bob:hunter2@git.example.com/r.git", "path": "/c"}]},
            "repository must not embed a password; use passwordSecret",
        ),
        ({"pvc": [{"claimInfo": {"size": "lots"}, "path": "/d"}]}, "'lots' is not a quantity"),
    ],
)
def test_storage_rules(storage: dict[str, Any], message: str) -> None:
    assert message in only_issue("workspace", {"storage": storage})


# --- inference autoscaling and model ---------------------------------------------------------


def scaling(**autoscaling: Any) -> dict[str, Any]:
    return {"autoscaling": autoscaling}


@pytest.mark.parametrize(
    ("autoscaling", "message"),
    [
        ({"metricThreshold": 100}, "metricThreshold requires metric"),
        ({"scaleToZeroRetentionSeconds": 300}, "scaleToZeroRetentionSeconds requires minReplicas"),
        (
            {"minReplicas": 1, "scaleToZeroRetentionSeconds": 300},
            "scaleToZeroRetentionSeconds requires minReplicas == 0",
        ),
        ({"minReplicas": 3, "maxReplicas": 2}, "maxReplicas must be >= minReplicas (3)"),
        (
            {"minReplicas": 0, "maxReplicas": 3, "metric": "latency"},
            "metric 'latency' cannot scale to zero",
        ),
    ],
)
def test_autoscaling_rules(autoscaling: dict[str, Any], message: str) -> None:
    found = only_issue("inference", scaling(**autoscaling))
    assert found.startswith("spec.autoscaling: Value error, ")
    assert message in found


@pytest.mark.parametrize("metric", ["throughput", "concurrency"])
def test_throughput_and_concurrency_scale_to_zero(metric: str) -> None:
    parsed = validate(
        "inference",
        scaling(minReplicas=0, maxReplicas=3, metric=metric, scaleToZeroRetentionSeconds=1800),
    )
    assert isinstance(parsed, InferenceSubmission)
    assert parsed.spec.autoscaling is not None
    assert parsed.spec.autoscaling.minReplicas == 0


@pytest.mark.parametrize(("value", "ok"), [(0, True), (3600, True), (3601, False), (-1, False)])
def test_scale_to_zero_retention_bounds(value: int, ok: bool) -> None:
    spec = scaling(minReplicas=0, scaleToZeroRetentionSeconds=value)
    if ok:
        assert validate("inference", spec)
    else:
        assert only_issue("inference", spec).startswith(
            "spec.autoscaling.scaleToZeroRetentionSeconds: Input should"
        )


def test_serving_port_protocol_is_http_or_grpc() -> None:
    assert validate("inference", {"servingPort": {"container": 9000, "protocol": "grpc"}})
    assert only_issue("inference", {"servingPort": {"container": 9000, "protocol": "tcp"}})


def test_model_from_catalog_needs_a_model_name() -> None:
    parsed = validate("inference", {"model": {"catalog": "berth", "modelName": "llama-3-8b"}})
    assert parsed.spec.model.credential is None
    assert only_issue("inference", {"model": {"catalog": "huggingface"}}) == (
        "spec.model.modelName: Field required"
    )


# --- distributed -----------------------------------------------------------------------------


def test_master_spec_needs_master_spec_same_as_worker_false() -> None:
    assert only_issue("distributed", {}, masterSpec={"image": "x"}) == (
        ": Value error, masterSpec requires masterSpecSameAsWorker false"
    )


def test_different_master_needs_a_master_spec() -> None:
    assert "masterSpec is required when masterSpecSameAsWorker is false" in only_issue(
        "distributed", {}, masterSpecSameAsWorker=False
    )


def test_master_has_its_own_environment_compute_and_volumes(
    sample_submissions: dict[str, dict[str, Any]],
) -> None:
    parsed = ADAPTER.validate_python(sample_submissions["distributed"])

    assert isinstance(parsed, DistributedSubmission)
    assert parsed.masterSpec is not None
    assert parsed.masterSpec.command == "python master.py"
    assert parsed.masterSpec.compute is not None
    assert parsed.masterSpec.compute.gpuDevicesRequest == 0
    assert parsed.spec.compute is not None
    assert parsed.spec.compute.gpuDevicesRequest == 1


def test_workers_only_excludes_a_master_spec() -> None:
    parsed = validate("distributed", {"numWorkers": 4}, noMaster=True)
    assert parsed.noMaster is True
    assert "noMaster excludes a master spec" in only_issue(
        "distributed", {}, noMaster=True, masterSpecSameAsWorker=False, masterSpec={}
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"numWorkers": 0}, "spec.numWorkers: Input should be greater than or equal to 1"),
        ({"slotsPerWorker": 2}, "slotsPerWorker applies only to MPI, not PyTorch"),
        ({"distributedFramework": "TF", "minReplicas": 1}, "minReplicas applies only to PyTorch"),
        ({"minReplicas": 4, "maxReplicas": 2}, "maxReplicas must be >= minReplicas"),
        (
            {"numWorkers": 8, "minReplicas": 1, "maxReplicas": 4},
            "numWorkers must be between minReplicas and maxReplicas",
        ),
        ({"distributedFramework": "Ray"}, "spec.distributedFramework: Input should be"),
    ],
)
def test_distributed_rules(spec: dict[str, Any], message: str) -> None:
    assert message in only_issue("distributed", spec)


def test_mpi_takes_slots_per_worker() -> None:
    parsed = validate("distributed", {"distributedFramework": "MPI", "slotsPerWorker": 2})
    assert parsed.spec.slotsPerWorker == 2


# --- system defaults -------------------------------------------------------------------------


def test_system_defaults_for_a_bare_workspace() -> None:
    # No auto-deletion: a workspace runs until stopped and never completes.
    assert applicable_system_defaults(WorkspaceSpec()) == {
        "backoffLimit": DEFAULT_BACKOFF_LIMIT,
        "terminateAfterPreemption": False,
        "priorityClass": "build",
    }


def test_system_defaults_skip_what_the_user_set_or_what_does_not_apply() -> None:
    workspace = validate("workspace", {"backoffLimit": 2, "allowOverQuota": True}).spec
    inference = validate("inference", scaling(maxReplicas=3)).spec
    with_metric = validate("inference", scaling(maxReplicas=3, metric="throughput")).spec
    mpi = validate("distributed", {"distributedFramework": "MPI", "numWorkers": 2}).spec
    pytorch = validate("distributed", {}).spec

    assert "backoffLimit" not in applicable_system_defaults(workspace)
    assert "priorityClass" not in applicable_system_defaults(workspace)
    assert applicable_system_defaults(inference) == {
        "autoDeletionTimeAfterCompletionSeconds": DEFAULT_AUTO_DELETION_SECONDS,
        "autoscaling.minReplicas": 1,
    }
    assert applicable_system_defaults(with_metric)["autoscaling.metricThreshold"] == 100
    assert applicable_system_defaults(mpi)["slotsPerWorker"] == 1
    assert "numWorkers" not in applicable_system_defaults(mpi)
    assert "slotsPerWorker" not in applicable_system_defaults(pytorch)
    assert applicable_system_defaults(pytorch)["numWorkers"] == 1


def _system_defaults_by_field_infos(spec: Any) -> dict[str, object]:
    """The system defaults of ``spec`` read straight from every field's schema extra."""
    from berth.contracts.spec.kinds import _DEFAULT_CONDITIONS

    found: dict[str, object] = {}

    def walk(model: Any, prefix: str) -> None:
        for name, field in type(model).model_fields.items():
            value = getattr(model, name)
            path = f"{prefix}{name}"
            if hasattr(type(value), "model_fields"):
                walk(value, f"{path}.")
                continue
            extra = field.json_schema_extra
            if value is None and isinstance(extra, dict) and SYSTEM_DEFAULT_KEY in extra:
                condition = _DEFAULT_CONDITIONS.get(path)
                if condition is None or condition(spec):
                    found[path] = extra[SYSTEM_DEFAULT_KEY]

    walk(spec, "")
    return found


def test_system_defaults_are_those_the_schema_publishes_in_field_order(
    sample_submissions: dict[str, dict[str, Any]],
) -> None:
    specs = [ADAPTER.validate_python(p).spec for p in sample_submissions.values()]
    specs += [
        validate("workspace", {"security": {"runAsNonRoot": True}}).spec,
        validate("inference", scaling(maxReplicas=3, metric="throughput")).spec,
        validate("distributed", {"distributedFramework": "MPI"}).spec,
        WorkspaceSpec(),
    ]
    for spec in specs:
        expected = _system_defaults_by_field_infos(spec)
        assert list(applicable_system_defaults(spec).items()) == list(expected.items())


def test_filling_the_system_defaults_keeps_a_submission_valid(
    sample_submissions: dict[str, dict[str, Any]],
) -> None:
    for payload in sample_submissions.values():
        filled = copy.deepcopy(payload)
        parsed = ADAPTER.validate_python(payload)
        for path, value in applicable_system_defaults(parsed.spec).items():
            *parents, leaf = path.split(".")
            target = filled["spec"]
            for part in parents:
                target = target[part]
            target[leaf] = value
        assert ADAPTER.validate_python(filled).spec.model_fields_set >= parsed.spec.model_fields_set


def test_workspace_submission_keeps_its_public_envelope() -> None:
    parsed = WorkspaceSubmission(name="w", projectId="p", spec=WorkspaceSpec(image="busybox"))

    assert (parsed.kind, parsed.useGivenNameAsPrefix, parsed.clusterId) == (
        "workspace",
        False,
        None,
    )


# --- rules of the controllers and webhooks every cluster runs ---------------------------------


def test_a_workspace_name_leaves_room_for_the_statefulset_revision_hash() -> None:
    # Pods of a StatefulSet are labelled <name>-<10-character hash>; a label value holds 63.
    assert validate("workspace", {}, name="w" * 52).name == "w" * 52
    assert "at most 52 characters (got 60)" in only_issue("workspace", {}, name="w" * 60)
    # Intake appends "-" and six hex digits to a prefix.
    assert "at most 45 characters" in only_issue(
        "workspace", {}, name="w" * 46, useGivenNameAsPrefix=True
    )
    # Other kinds keep the 63 of a DNS label.
    assert validate("training", {}, name="t" * 63).name == "t" * 63


def test_xgboost_needs_a_master() -> None:
    # The training-operator's webhook requires xgbReplicaSpecs[Master].
    assert "noMaster: XGBoost needs a master" in only_issue(
        "distributed", {"distributedFramework": "XGBoost"}, noMaster=True
    )
    assert validate("distributed", {"distributedFramework": "PyTorch"}, noMaster=True).noMaster


def test_a_host_path_is_read_only_unless_asked_otherwise() -> None:
    # Run:ai's default, published as berth's system default (the renderer applies it too).
    assert HostPath.model_fields["readOnly"].json_schema_extra == {SYSTEM_DEFAULT_KEY: True}


def test_requested_gpus_count_no_gpu_for_an_mpi_launcher() -> None:
    compute = {"gpuDevicesRequest": 2}
    pytorch = {"kind": "distributed", "spec": {"numWorkers": 3, "compute": compute}}
    mpi = {"kind": "distributed", "spec": {**pytorch["spec"], "distributedFramework": "MPI"}}
    assert requested_gpus(pytorch) == 8  # the master has the workers' GPUs
    assert requested_gpus(mpi) == 6  # the launcher only starts mpirun
