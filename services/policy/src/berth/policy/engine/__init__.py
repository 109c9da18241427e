"""The policy engine (pure): field catalog, policy validation, merging along a branch, evaluation.

Nothing here touches the database or the bus, so the same code answers dry runs, evaluates
batches of submissions and backs the property tests.

* ``fields``: the field catalog (which paths a policy may name, with their value types);
* ``values``: numbers, quantities and what each value type accepts;
* ``rules``: the rule kinds, one class each (validate on save, tighten on merge, check values);
* ``compile``: policy documents flattened to paths and checked;
* ``merge``: rule ownership along a branch and the effective policy;
* ``evaluate``: a submission against an effective policy.
"""

from berth.policy.engine.compile import Compiled, RuleValue, canonical, compile_policy, patched
from berth.policy.engine.evaluate import evaluate
from berth.policy.engine.fields import FieldInfo, ValueType, catalog
from berth.policy.engine.merge import (
    Effective,
    InstancesEntry,
    RuleEntry,
    ScopedPolicy,
    branch_of,
    describe,
    merge,
    meta_branch,
    ownership_conflicts,
)
from berth.policy.engine.rules import (
    ALLOWED_KINDS,
    INSTANCES_KINDS,
    RULE_KINDS,
    InstancesKind,
    RuleKind,
)

__all__ = [
    "ALLOWED_KINDS",
    "INSTANCES_KINDS",
    "RULE_KINDS",
    "Compiled",
    "Effective",
    "FieldInfo",
    "InstancesEntry",
    "InstancesKind",
    "RuleEntry",
    "RuleKind",
    "RuleValue",
    "ScopedPolicy",
    "ValueType",
    "branch_of",
    "canonical",
    "catalog",
    "compile_policy",
    "describe",
    "evaluate",
    "merge",
    "meta_branch",
    "ownership_conflicts",
    "patched",
]
