"""Catalog command-line flags turned into asset specs, and asset names on a submission."""

from __future__ import annotations

import pytest
import typer

from berth.cli import catalog_commands, submission


def test_quota_flags_become_node_pool_quotas() -> None:
    assert catalog_commands._quota(["a100:gpu=2,cpu=8,weight=High"]) == [
        {
            "nodePool": "a100",
            "gpu": {"deserved": 2.0, "overQuotaWeight": "High"},
            "cpu": {"deserved": 8.0, "overQuotaWeight": "High"},
            "memory": {"deserved": 0, "overQuotaWeight": "High"},
        }
    ]
    with pytest.raises(typer.BadParameter):
        catalog_commands._quota(["a100:gpus=2"])


def test_tool_flags_name_who_may_connect() -> None:
    assert catalog_commands._tool("lab:jupyter-notebook:8888") == {
        "name": "lab",
        "toolType": "jupyter-notebook",
        "containerPort": 8888,
    }
    assert catalog_commands._tool("tb:tensorboard:6006:groups=ml,cv")["groups"] == ["ml", "cv"]
    with pytest.raises(typer.BadParameter):
        catalog_commands._tool("lab:jupyter")


def test_asset_names_go_on_the_submission_only_when_given() -> None:
    body = submission.build(
        kind="workspace",
        project="p",
        name="n",
        name_prefix=False,
        image=None,
        gpu=None,
        gpu_portion=None,
        cpu=3,
        memory=None,
        command=None,
        args=None,
        env=None,
        labels=None,
        annotations=None,
        node_pools=None,
        backoff_limit=None,
        auto_delete_seconds=None,
        allow_over_quota=None,
        assets={"template": "t", "environment": None, "compute": None, "dataSources": ["d"]},
    )
    assert body["template"] == "t" and body["dataSources"] == ["d"]
    assert "environment" not in body and "image" not in body["spec"]
