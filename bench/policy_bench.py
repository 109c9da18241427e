"""In-process policy evaluation: one submission against a 40-rule effective policy.

    python -m bench.policy_bench [--submissions 5000]

Measures ``engine.evaluate`` alone (what the policy service does per submission once a batch's
policies are read and merged), and prints p50/p95/p99 per submission. Target: p95 < 1 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from pydantic import TypeAdapter

from berth.contracts.policy import PolicyDocument, ScopeRef
from berth.contracts.workload import WorkloadSubmission
from berth.policy import engine

DEPARTMENT: dict[str, Any] = {
    "defaults": {
        "imagePullPolicy": "IfNotPresent",
        "createHomeDir": True,
        "nodePools": ["a100", "default"],
        "backoffLimit": 3,
        "autoDeletionTimeAfterCompletionSeconds": 604800,
        "environmentVariables": {
            "instances": [
                {"name": "HF_HOME", "value": "/data/hf-cache"},
                {"name": "WANDB_BASE_URL", "value": "https://wandb.corp.example"},
            ]
        },
        "compute": {"cpuCoreRequest": 2, "cpuMemoryRequest": "16G", "gpuDevicesRequest": 1},
        "security": {"runAsNonRoot": True, "allowPrivilegeEscalation": False},
    },
    "rules": {
        "image": {"required": True},
        "imagePullPolicy": {"canEdit": False},
        "createHomeDir": {"canEdit": True},
        "workingDir": {"canEdit": True},
        "command": {"canEdit": True},
        "args": {"canEdit": True},
        "nodeType": {"options": [{"value": "a100"}, {"value": "h100"}]},
        "nodePools": {"required": True},
        "allowOverQuota": {"canEdit": True},
        "autoDeletionTimeAfterCompletionSeconds": {"min": 0, "max": 2592000},
        "terminateAfterPreemption": {"canEdit": True},
        "stdin": {"canEdit": True},
        "tty": {"canEdit": True},
        "exposedUrls": {"instances": {"canAdd": True}},
        "completions": {"min": 1, "max": 100},
        "parallelism": {"min": 1, "max": 10},
        "environmentVariables": {
            "instances": {"locked": ["WANDB_BASE_URL"]},
            "attributes": {"value": {"canEdit": True}},
        },
        "labels": {"attributes": {"value": {"required": True}}},
        "annotations": {"instances": {"canAdd": True}},
        "compute": {
            "gpuDevicesRequest": {"min": 0, "max": 2},
            "cpuCoreRequest": {"min": 0.5, "max": 16, "step": 0.5},
            "cpuCoreLimit": {"min": 0.5, "max": 32},
            "cpuMemoryRequest": {"min": "1G", "max": "128G"},
            "cpuMemoryLimit": {"min": "1G", "max": "256G"},
            "largeShmRequest": {"canEdit": True},
            "extendedResources": {"instances": {"canAdd": False}},
        },
        "security": {
            "allowPrivilegeEscalation": {"canEdit": False},
            "runAsUid": {"min": 1000},
            "runAsGid": {"min": 1000},
            "runAsNonRoot": {"canEdit": False},
            "readOnlyRootFilesystem": {"canEdit": True},
            "hostIpc": {"canEdit": False},
            "hostNetwork": {"canEdit": False},
        },
        "storage": {
            "hostPath": {"instances": {"canAdd": False}},
            "nfs": {"instances": {"canAdd": False}},
            "s3": {"instances": {"canAdd": False}},
            "git": {"instances": {"canAdd": True}},
            "pvc": {"instances": {"canAdd": True}},
        },
    },
    "imposedAssets": [
        {
            "id": "datasets",
            "kind": "pvc",
            "source": {"existingPvc": True, "claimName": "datasets", "path": "/datasets"},
        }
    ],
}
PROJECT: dict[str, Any] = {
    "defaults": {"nodePools": ["default"], "compute": {"cpuCoreRequest": 4}},
    "rules": {"backoffLimit": {"max": 5}, "workingDir": {"required": False}},
}

SUBMISSION: dict[str, Any] = {
    "kind": "training",
    "name": "bench",
    "projectId": "team-a",
    "spec": {
        "image": "pytorch/pytorch",
        "command": "python train.py",
        "compute": {"gpuDevicesRequest": 2, "cpuMemoryRequest": "32G", "cpuCoreLimit": 8},
        "environmentVariables": [
            {"name": "EPOCHS", "value": "10"},
            {"name": "HF_HOME", "exclude": True},
        ],
        "labels": [{"name": "team", "value": "vision"}],
        "annotations": [{"name": "owner", "value": "ml"}],
    },
}


def build() -> tuple[engine.Effective, WorkloadSubmission]:
    policies = []
    for version, (ref, doc) in enumerate(
        [
            (ScopeRef(scope="department", id="research"), DEPARTMENT),
            (ScopeRef(scope="project", id="team-a"), PROJECT),
        ],
        start=1,
    ):
        compiled, issues = engine.compile_policy(
            "training", PolicyDocument.model_validate(doc), ref
        )
        if issues:
            raise SystemExit(f"invalid benchmark policy: {issues}")
        policies.append(engine.ScopedPolicy(ref, compiled, version))
    effective = engine.merge("training", policies)
    submission: WorkloadSubmission = TypeAdapter(WorkloadSubmission).validate_python(SUBMISSION)
    return effective, submission


def rule_count(effective: engine.Effective) -> int:
    # Each field rule counts once, each itemized field's instance rules once.
    return len(effective.rules) + len(effective.instances)


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))
    return sorted_values[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.policy_bench", description=__doc__)
    parser.add_argument("--submissions", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args(argv)

    effective, submission = build()
    _, issues = engine.evaluate(submission, effective)
    if issues:
        raise SystemExit(f"benchmark submission should pass: {issues}")
    for _ in range(args.warmup):
        engine.evaluate(submission, effective)
    timings: list[float] = []
    for _ in range(args.submissions):
        start = time.perf_counter_ns()
        engine.evaluate(submission, effective)
        timings.append((time.perf_counter_ns() - start) / 1e6)
    timings.sort()
    p50, p95, p99 = (percentile(timings, q) for q in (0.5, 0.95, 0.99))
    sys.stdout.write(
        f"policy evaluation, {rule_count(effective)} rules, {args.submissions} submissions: "
        f"p50 {p50:.3f} ms, p95 {p95:.3f} ms, p99 {p99:.3f} ms, "
        f"mean {statistics.fmean(timings):.3f} ms; target p95 < 1 ms: "
        f"{'met' if p95 < 1 else 'MISSED'}\n"
    )
    return 0 if p95 < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
