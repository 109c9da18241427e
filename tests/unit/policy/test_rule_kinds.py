"""The rule-kind table: every kind of the published rule shape has one class, and the table
decides which kinds a field accepts."""

from __future__ import annotations

from typing import Any

from berth.contracts.policy import FieldRule, InstancesRule, ItemizedRule
from berth.policy import engine
from berth.policy.engine.rules import META_KINDS
from tests.unit.policy.policy_builders import DEPT, PROJECT, TENANT, effective, problems, run


def test_every_constraint_of_a_field_rule_has_a_kind_in_the_table() -> None:
    names = [kind.name for kind in engine.RULE_KINDS]
    assert len(names) == len(set(names))
    assert set(names) == set(FieldRule.model_fields) - META_KINDS


def test_every_rule_on_the_items_of_an_itemized_field_has_a_kind_in_the_table() -> None:
    names = [kind.name for kind in engine.INSTANCES_KINDS]
    assert len(names) == len(set(names))
    assert set(names) == set(InstancesRule.model_fields)


def test_instances_rules_only_tighten_down_the_branch() -> None:
    def instances(rule: dict[str, Any]) -> dict[str, Any]:
        return {"rules": {"environmentVariables": {"instances": rule}}}

    eff = effective(
        (TENANT, instances({"locked": ["A"]})),
        (DEPT, instances({"canAdd": False})),
        (PROJECT, instances({"canAdd": True, "locked": ["A"]})),
    )

    described = {
        (r.field, str(r.source), str(r.rule))
        for r in engine.describe(eff).rules
        if ".instances." in r.field
    }
    assert described == {
        ("environmentVariables.instances.locked", "tenant", "{'locked': ['A']}"),
        ("environmentVariables.instances.canAdd", "department research", "{'canAdd': False}"),
    }


def test_the_table_decides_which_kinds_each_value_type_accepts() -> None:
    expected = {
        "boolean": {"required", "canEdit"},
        "string": {"required", "canEdit", "options"},
        "integer": {"required", "canEdit", "min", "max", "step", "defaultFrom"},
        "number": {"required", "canEdit", "min", "max", "step", "defaultFrom"},
        "quantity": {"required", "canEdit", "min", "max", "defaultFrom"},
        "array": {"required", "canEdit"},
    }
    accepted = engine.ALLOWED_KINDS
    assert accepted == expected


def test_a_malformed_bound_is_named_by_its_kind() -> None:
    issues = problems({"rules": {"compute": {"cpuMemoryRequest": {"max": "lots"}}}})
    assert [(i.field, i.details) for i in issues] == [
        ("rules.compute.cpuMemoryRequest.max", "'lots' is not a quantity")
    ]


def test_tightening_keeps_the_narrower_bound_and_names_the_scope_it_comes_from() -> None:
    eff = effective(
        (DEPT, {"rules": {"compute": {"gpuDevicesRequest": {"max": 4, "allowOverride": True}}}}),
        (PROJECT, {"rules": {"compute": {"gpuDevicesRequest": {"max": 2, "min": 1}}}}),
    )
    entry = eff.rules["compute.gpuDevicesRequest"]
    assert (entry.rule.max, entry.rule.min) == (2, 1)
    assert entry.owner == DEPT
    assert entry.sources["max"] == PROJECT


def test_a_looser_narrower_bound_changes_nothing() -> None:
    eff = effective(
        (DEPT, {"rules": {"compute": {"gpuDevicesRequest": {"max": 2, "allowOverride": True}}}}),
        (PROJECT, {"rules": {"compute": {"gpuDevicesRequest": {"max": 8}}}}),
    )
    entry = eff.rules["compute.gpuDevicesRequest"]
    assert entry.rule.max == 2
    assert entry.sources["max"] == DEPT


def test_options_narrowed_by_a_narrower_scope_keep_only_the_common_values() -> None:
    _, issues = run(
        {"image": "i", "nodeType": "h100"},
        (
            DEPT,
            {
                "rules": {
                    "nodeType": {
                        "options": [{"value": "a100"}, {"value": "h100"}],
                        "allowOverride": True,
                    }
                }
            },
        ),
        (PROJECT, {"rules": {"nodeType": {"options": [{"value": "a100"}]}}}),
    )
    assert [(i.field, i.details) for i in issues] == [
        ("nodeType", "value must be one of: a100 (rule from project team-a)")
    ]


def test_an_itemized_rule_is_the_shape_of_an_itemized_field_in_a_policy() -> None:
    itemized = ItemizedRule(
        instances=InstancesRule(locked=["HF_HOME"], canAdd=False),
        attributes={"value": FieldRule(required=True)},
    )
    doc = {
        "defaults": {"environmentVariables": {"instances": [{"name": "HF_HOME", "value": "/hf"}]}},
        "rules": {"environmentVariables": itemized.model_dump(mode="json", exclude_none=True)},
    }
    assert problems(doc) == []

    _, issues = run(
        {"image": "i", "environmentVariables": [{"name": "EXTRA", "value": "1"}]}, (DEPT, doc)
    )
    assert [i.field for i in issues] == ["environmentVariables[EXTRA]"]
