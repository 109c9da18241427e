"""Catalog command-line flags turned into asset specs, and asset names on a submission."""

from __future__ import annotations

import pytest
import typer

from berth.cli import catalog_kinds
from berth.cli.submission import ComputeFlags, Submission, WorkloadFlags


def test_quota_flags_become_node_pool_quotas() -> None:
    assert catalog_kinds._quota(["a100:gpu=2,cpu=8,weight=High"]) == [
        {
            "nodePool": "a100",
            "gpu": {"deserved": 2.0, "overQuotaWeight": "High"},
            "cpu": {"deserved": 8.0, "overQuotaWeight": "High"},
            "memory": {"deserved": 0, "overQuotaWeight": "High"},
        }
    ]
    with pytest.raises(typer.BadParameter):
        catalog_kinds._quota(["a100:gpus=2"])


def test_tool_flags_name_who_may_connect() -> None:
    assert catalog_kinds._tool("lab:jupyter-notebook:8888") == {
        "name": "lab",
        "toolType": "jupyter-notebook",
        "containerPort": 8888,
    }
    assert catalog_kinds._tool("tb:tensorboard:6006:groups=ml,cv")["groups"] == ["ml", "cv"]
    with pytest.raises(typer.BadParameter):
        catalog_kinds._tool("lab:jupyter")


def test_asset_names_go_on_the_submission_only_when_given() -> None:
    body = Submission(
        kind="workspace",
        project="p",
        name="n",
        flags=WorkloadFlags(compute=ComputeFlags(cpu=3)),
        template="t",
        datasources=["d"],
    ).body()
    assert body["template"] == "t" and body["dataSources"] == ["d"]
    assert "environment" not in body and "image" not in body["spec"]
