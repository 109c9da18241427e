"""Asset specs are checked when saved, with every problem named."""

from __future__ import annotations

import pytest

from berth.contracts.catalog import (
    AssetPutRequest,
    AssetView,
    credential_of_secret,
    credential_secret_name,
    validate_spec,
)
from berth.contracts.envelope import Actor


def test_a_data_source_volume_is_checked_against_its_type() -> None:
    with pytest.raises(ValueError, match="claimName is required"):
        validate_spec("datasource", {"type": "pvc", "volume": {"existingPvc": True, "path": "/d"}})
    with pytest.raises(ValueError, match="takes no credential"):
        validate_spec(
            "datasource",
            {
                "type": "nfs",
                "volume": {"server": "s", "path": "/", "mountPath": "/m"},
                "credential": "c",
            },
        )
    ok = validate_spec(
        "datasource",
        {"type": "s3", "volume": {"bucket": "b", "path": "/s3"}, "credential": "keys"},
    )
    assert ok["credential"] == "keys"


def test_a_git_data_source_refuses_an_inline_password() -> None:
    with pytest.raises(ValueError, match="must not embed a password"):
        validate_spec(
            "datasource",
            {"type": "git", "volume": {"repository": "https://u:pw@git.local/r", "path": "/c"}},
        )


def test_tool_access_for_groups_needs_groups() -> None:
    with pytest.raises(ValueError, match="needs at least one group"):
        validate_spec(
            "environment",
            {"image": "i", "tools": [{"name": "t", "containerPort": 80, "access": "groups"}]},
        )


def test_an_environment_supports_every_type_unless_told() -> None:
    spec = validate_spec("environment", {"image": "i"})
    assert spec["workloadSupportedTypes"] == ["workspace", "training", "distributed", "inference"]


def test_a_project_quota_has_an_over_quota_weight() -> None:
    spec = validate_spec(
        "project",
        {"quota": [{"nodePool": "a100", "gpu": {"deserved": 2, "overQuotaWeight": "High"}}]},
    )
    assert spec["quota"][0]["gpu"] == {"deserved": 2.0, "overQuotaWeight": "High"}
    with pytest.raises(ValueError, match="overQuotaWeight"):
        validate_spec("project", {"quota": [{"nodePool": "a", "gpu": {"overQuotaWeight": "Max"}}]})


def test_compute_is_the_workload_compute_section() -> None:
    with pytest.raises(ValueError, match=r"gpus: Extra inputs"):
        validate_spec("compute", {"gpus": 1})
    assert validate_spec("compute", {"gpuDevicesRequest": 1}) == {"gpuDevicesRequest": 1}


def test_credential_values_never_show_in_a_request_repr_nor_in_a_view() -> None:
    request = AssetPutRequest(
        actor=Actor(email="a@b.c"),
        kind="credential",
        name="hf",
        spec={"type": "huggingface-token"},
        secretValues={"HF_TOKEN": "hf_topsecret"},
    )
    assert "hf_topsecret" not in repr(request)
    assert "secretValues" not in AssetView.model_fields
    assert credential_secret_name("hf") == "berth-cred-hf"
    assert credential_of_secret("berth-cred-hf") == "hf"
    assert credential_of_secret("someone-elses") is None
