"""Properties of merging and evaluation, over generated policies and submissions."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings, strategies

from berth.contracts.policy import ScopeRef
from berth.policy import engine
from tests.unit.policy.policy_builders import DEPT, PROJECT, TENANT, compiled, submission

# Numeric fields whose values no cross-field validator of the spec constrains.
INT_FIELDS = {
    "backoffLimit": (0, 100),
    "autoDeletionTimeAfterCompletionSeconds": (0, 10**7),
    "completions": (1, 1000),
    "compute.gpuDevicesRequest": (0, 16),
}
QUANTITY_UNITS = ["M", "G", "Mi", "Gi"]


def _put(spec: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = spec
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


@strategies.composite
def bounds(draw: strategies.DrawFn, path: str) -> dict[str, Any]:
    low, high = INT_FIELDS[path]
    a = draw(strategies.integers(low, high))
    b = draw(strategies.integers(a, high))
    rule: dict[str, Any] = {}
    if draw(strategies.booleans()):
        rule["min"] = a
    if draw(strategies.booleans()) or not rule:
        rule["max"] = b
    return rule


@given(
    path=strategies.sampled_from(sorted(INT_FIELDS)),
    data=strategies.data(),
    override=strategies.booleans(),
    value=strategies.integers(0, 1000),
)
@settings(max_examples=300, deadline=None)
def test_a_narrower_scope_never_loosens_a_rule_it_does_not_own(
    path: str, data: strategies.DataObject, override: bool, value: int
) -> None:
    broad_rule = {**data.draw(bounds(path)), **({"allowOverride": True} if override else {})}
    narrow_rule = data.draw(bounds(path))
    broad = engine.ScopedPolicy(DEPT, compiled({"rules": {path: broad_rule}}, scope=DEPT), 1)
    narrow = engine.ScopedPolicy(
        PROJECT, compiled({"rules": {path: narrow_rule}}, scope=PROJECT), 2
    )

    conflicts = engine.ownership_conflicts(narrow, [broad])
    assert bool(conflicts) is not override

    low, high = INT_FIELDS[path]
    value = min(max(value, low), high)
    spec: dict[str, Any] = {"image": "i"}
    _put(spec, path, value)
    broken = ("min" in broad_rule and value < broad_rule["min"]) or (
        "max" in broad_rule and value > broad_rule["max"]
    )
    # Even merged with a looser narrower rule (saved against the check, or allowed to
    # override), whatever the broader rule refuses stays refused.
    eff = engine.merge("training", [narrow, broad])
    _, issues = engine.evaluate(submission(spec), eff)
    if broken:
        assert path in [i.field for i in issues]


@strategies.composite
def satisfiable_policy(draw: strategies.DrawFn) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    rules: dict[str, Any] = {}
    for path in draw(strategies.sets(strategies.sampled_from(sorted(INT_FIELDS)), min_size=1)):
        low, high = INT_FIELDS[path]
        a = draw(strategies.integers(low, high))
        b = draw(strategies.integers(a, high))
        default = draw(strategies.integers(a, b))
        step = draw(strategies.sampled_from([None, 1, 2, 5]))
        if step is not None:
            default = a + ((default - a) // step) * step
        rule: dict[str, Any] = {"min": a, "max": b, "required": draw(strategies.booleans())}
        if step is not None:
            rule["step"] = step
        if draw(strategies.booleans()):
            rule["canEdit"] = False
        defaults[path] = default
        rules[path] = rule
    gib = draw(strategies.integers(1, 64))
    unit = draw(strategies.sampled_from(QUANTITY_UNITS))
    defaults["compute.cpuMemoryRequest"] = f"{gib}{unit}"
    rules["compute.cpuMemoryRequest"] = {"min": f"1{unit}", "max": f"64{unit}"}
    defaults["nodePools"] = draw(
        strategies.lists(strategies.sampled_from(["a", "b", "c"]), unique=True, min_size=1)
    )
    rules["nodePools"] = {"required": True}
    return {"defaults": defaults, "rules": rules}


@given(policy=satisfiable_policy())
@settings(max_examples=200, deadline=None)
def test_defaults_applied_to_an_empty_submission_pass_their_own_policy(
    policy: dict[str, Any],
) -> None:
    eff = engine.merge("training", [engine.ScopedPolicy(DEPT, compiled(policy), 1)])
    result, issues = engine.evaluate(submission({"image": "i"}), eff)
    assert issues == []
    # And the effective spec, submitted again as is, passes too.
    again = submission(result.spec.model_dump(exclude_none=True))
    assert engine.evaluate(again, eff)[1] == []


@given(
    policies=strategies.lists(
        strategies.tuples(strategies.sampled_from([TENANT, DEPT, PROJECT]), satisfiable_policy()),
        max_size=3,
        unique_by=lambda p: p[0].scope,
    ),
    value=strategies.integers(0, 200),
)
@settings(max_examples=100, deadline=None)
def test_evaluation_is_deterministic(
    policies: list[tuple[ScopeRef, dict[str, Any]]], value: int
) -> None:
    scoped = [
        engine.ScopedPolicy(ref, compiled(doc, scope=ref), i)
        for i, (ref, doc) in enumerate(policies)
    ]
    sub = submission(
        {
            "image": "i",
            "backoffLimit": min(value, 100),
            "compute": {"gpuDevicesRequest": value % 17},
        }
    )
    first = engine.evaluate(sub, engine.merge("training", scoped))
    second = engine.evaluate(sub, engine.merge("training", list(reversed(scoped))))
    assert first == second
    assert engine.evaluate(sub, engine.merge("training", scoped)) == first
