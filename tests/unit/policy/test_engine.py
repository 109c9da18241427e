"""The policy engine: each rule kind and value type, validation, merging, evaluation."""

from __future__ import annotations

from typing import Any

import pytest

from berth.contracts.events import Issue
from berth.contracts.policy import PolicyDocument
from berth.policy import engine
from tests.unit.policy.policy_builders import (
    CLUSTER,
    DEPT,
    PROJECT,
    TENANT,
    compiled,
    effective,
    fields,
    problems,
    run,
    scoped,
)

IMAGE = {"image": "pytorch/pytorch"}


def spec(**values: Any) -> dict[str, Any]:
    return {**IMAGE, **values}


# --- validation --------------------------------------------------------------------------------


class TestValidation:
    def test_unknown_field_path_is_named(self) -> None:
        found = problems({"rules": {"compute": {"gpuCount": {"max": 2}}}, "defaults": {"nope": 1}})
        assert fields(found) == ["defaults.nope", "rules.compute.gpuCount"]
        assert all(i.details == "unknown field path" for i in found)

    def test_rule_kind_not_allowed_for_the_type(self) -> None:
        found = problems(
            {
                "rules": {
                    "compute": {"largeShmRequest": {"max": 1}, "cpuMemoryRequest": {"step": 1}},
                    "image": {"min": 1},
                    "nodePools": {"options": [{"value": "a"}]},
                }
            }
        )
        assert sorted((i.field, i.details) for i in found) == [
            ("rules.compute.cpuMemoryRequest", "rule 'step' is not allowed for a quantity field"),
            ("rules.compute.largeShmRequest", "rule 'max' is not allowed for a boolean field"),
            ("rules.image", "rule 'min' is not allowed for a string field"),
            ("rules.nodePools", "rule 'options' is not allowed for a array field"),
        ]

    def test_min_greater_than_max(self) -> None:
        found = problems({"rules": {"compute.gpuDevicesRequest": {"min": 5, "max": 2}}})
        assert found == [
            Issue(
                field="rules.compute.gpuDevicesRequest", details="min (5) is greater than max (2)"
            )
        ]

    def test_min_greater_than_max_across_quantity_units(self) -> None:
        found = problems({"rules": {"compute": {"cpuMemoryRequest": {"min": "2Gi", "max": "2G"}}}})
        assert fields(found) == ["rules.compute.cpuMemoryRequest"]

    def test_bad_quantity(self) -> None:
        found = problems(
            {
                "rules": {"compute": {"cpuMemoryRequest": {"max": "lots"}}},
                "defaults": {"compute": {"gpuMemoryRequest": "5 GB"}},
            }
        )
        assert fields(found) == [
            "defaults.compute.gpuMemoryRequest",
            "rules.compute.cpuMemoryRequest.max",
        ]

    def test_unknown_rule_kind_and_bad_default_type(self) -> None:
        found = problems(
            {"rules": {"backoffLimit": {"maximum": 3}}, "defaults": {"backoffLimit": "three"}}
        )
        assert fields(found) == ["defaults.backoffLimit", "rules.backoffLimit.maximum"]

    def test_string_default_must_be_an_allowed_value(self) -> None:
        found = problems({"defaults": {"imagePullPolicy": "Sometimes"}})
        assert fields(found) == ["defaults.imagePullPolicy"]

    def test_dotted_and_nested_keys_mean_the_same(self) -> None:
        nested = compiled({"rules": {"compute": {"gpuDevicesRequest": {"max": 2}}}})
        dotted = compiled({"rules": {"compute.gpuDevicesRequest": {"max": 2}}})
        assert nested == dotted

    def test_type_specific_fields(self) -> None:
        assert problems({"rules": {"autoscaling": {"maxReplicas": {"max": 8}}}}, "inference") == []
        assert fields(problems({"rules": {"autoscaling.maxReplicas": {"max": 8}}})) == [
            "rules.autoscaling.maxReplicas"
        ]
        assert problems({"rules": {"worker": {"numWorkers": {"max": 16}}}}, "distributed") == []
        assert fields(problems({"rules": {"numWorkers": {"max": 16}}}, "distributed")) == [
            "rules.numWorkers"
        ]
        assert (
            problems(
                {"rules": {"servingPort": {"protocol": {"options": [{"value": "http"}]}}}},
                "inference",
            )
            == []
        )

    def test_allow_override_is_not_for_projects(self) -> None:
        doc = PolicyDocument.model_validate(
            {"rules": {"backoffLimit": {"max": 3, "allowOverride": True}}}
        )
        _, found = engine.compile_policy("training", doc, PROJECT)
        assert fields(found) == ["rules.backoffLimit.allowOverride"]

    def test_canonical_form_round_trips(self) -> None:
        doc = {
            "defaults": {
                "compute.cpuCoreRequest": 2,
                "environmentVariables": {"instances": [{"name": "A", "value": "1"}]},
            },
            "rules": {"compute": {"gpuDevicesRequest": {"max": 2}}},
        }
        first = compiled(doc)
        again = engine.compile_policy("training", engine.canonical(first))[0]
        assert again == first
        assert engine.canonical(first).defaults == {
            "compute": {"cpuCoreRequest": 2},
            "environmentVariables": {"instances": [{"name": "A", "value": "1"}]},
        }


# --- rule kinds, by value type -------------------------------------------------------------------


class TestIntegersAndNumbers:
    RULES = {"rules": {"compute": {"gpuDevicesRequest": {"min": 0, "max": 2}}}}

    def test_max_names_the_field_the_bound_and_the_scope(self) -> None:
        _, issues = run(spec(compute={"gpuDevicesRequest": 4}), (DEPT, self.RULES))
        assert issues == [
            Issue(
                field="compute.gpuDevicesRequest",
                details="value must be no greater than 2 (rule from department research)",
            )
        ]

    def test_bounds_are_inclusive(self) -> None:
        assert run(spec(compute={"gpuDevicesRequest": 2}), (DEPT, self.RULES))[1] == []
        assert run(spec(compute={"gpuDevicesRequest": 0}), (DEPT, self.RULES))[1] == []

    def test_min(self) -> None:
        _, issues = run(
            spec(security={"runAsUid": 10, "uidGidSource": "custom"}),
            (DEPT, {"rules": {"security.runAsUid": {"min": 1000}}}),
        )
        assert [i.details for i in issues] == [
            "value must be no less than 1000 (rule from department research)"
        ]

    @pytest.mark.parametrize(
        ("value", "ok"), [(1, True), (3, True), (7, True), (2, False), (9, False)]
    )
    def test_step_counts_from_min(self, value: int, ok: bool) -> None:
        rules = {"rules": {"backoffLimit": {"min": 1, "max": 7, "step": 2}}}
        _, issues = run(spec(backoffLimit=value), (DEPT, rules))
        assert (issues == []) is ok, issues

    @pytest.mark.parametrize(
        ("value", "ok"), [(2.0, True), (2.25, True), (3.0, True), (2.1, False)]
    )
    def test_number_step(self, value: float, ok: bool) -> None:
        rules = {"rules": {"compute": {"cpuCoreRequest": {"min": 2, "max": 3, "step": 0.25}}}}
        _, issues = run(spec(compute={"cpuCoreRequest": value}), (DEPT, rules))
        assert (issues == []) is ok, issues

    def test_step_without_min_counts_from_zero(self) -> None:
        rules = {"rules": {"backoffLimit": {"step": 2}}}
        assert run(spec(backoffLimit=4), (DEPT, rules))[1] == []
        _, issues = run(spec(backoffLimit=3), (DEPT, rules))
        assert issues[0].details.startswith("value must be 0 plus a multiple of 2")

    def test_default_from_another_field_times_a_factor(self) -> None:
        rules = {
            "rules": {
                "compute": {
                    "cpuCoreRequest": {
                        "defaultFrom": {"field": "compute.cpuCoreLimit", "factor": 0.5}
                    }
                }
            }
        }
        result, issues = run(spec(compute={"cpuCoreLimit": 8}), (DEPT, rules))
        assert issues == []
        assert result["spec"]["compute"]["cpuCoreRequest"] == 4.0

    def test_default_from_does_not_override_a_submitted_value(self) -> None:
        rules = {
            "rules": {
                "compute.cpuCoreRequest": {
                    "defaultFrom": {"field": "compute.cpuCoreLimit", "factor": 0.5}
                }
            }
        }
        result, _ = run(spec(compute={"cpuCoreLimit": 8, "cpuCoreRequest": 1}), (DEPT, rules))
        assert result["spec"]["compute"]["cpuCoreRequest"] == 1


class TestQuantities:
    RULES = {"rules": {"compute": {"cpuMemoryRequest": {"min": "1G", "max": "128G"}}}}

    @pytest.mark.parametrize(
        ("value", "ok"),
        [
            ("16G", True),
            ("128G", True),
            ("1000M", True),
            ("119Gi", True),
            ("120Gi", False),
            ("999M", False),
            ("129G", False),
        ],
    )
    def test_units_compare_by_value(self, value: str, ok: bool) -> None:
        _, issues = run(spec(compute={"cpuMemoryRequest": value}), (DEPT, self.RULES))
        assert (issues == []) is ok, issues

    def test_message_keeps_the_written_bound(self) -> None:
        _, issues = run(spec(compute={"cpuMemoryRequest": "200G"}), (DEPT, self.RULES))
        assert (
            issues[0].details
            == "value must be no greater than 128G (rule from department research)"
        )

    def test_can_edit_compares_quantities_by_value(self) -> None:
        doc = {
            "defaults": {"compute.cpuMemoryRequest": "1G"},
            "rules": {"compute.cpuMemoryRequest": {"canEdit": False}},
        }
        assert run(spec(compute={"cpuMemoryRequest": "1000M"}), (DEPT, doc))[1] == []
        assert fields(run(spec(compute={"cpuMemoryRequest": "1Gi"}), (DEPT, doc))[1]) == [
            "compute.cpuMemoryRequest"
        ]


class TestStringsAndBooleans:
    def test_options(self) -> None:
        rules = {
            "rules": {"image": {"options": [{"value": "a/b", "displayed": "A"}, {"value": "c/d"}]}}
        }
        assert run({"image": "a/b"}, (DEPT, rules))[1] == []
        _, issues = run({"image": "x/y"}, (DEPT, rules))
        assert issues == [
            Issue(
                field="image",
                details="value must be one of: a/b, c/d (rule from department research)",
            )
        ]

    def test_can_edit_false_rejects_a_different_value(self) -> None:
        doc = {
            "defaults": {"security": {"runAsUid": 500}},
            "rules": {"security": {"runAsUid": {"canEdit": False}}},
        }
        assert run(spec(security={"runAsUid": 501}), (DEPT, {"defaults": doc["defaults"]}))[1] == []
        _, issues = run(spec(security={"runAsUid": 501}), (DEPT, doc))
        assert fields(issues) == ["security.runAsUid"]

    def test_can_edit_false_accepts_the_equal_value(self) -> None:
        doc = {
            "defaults": {"imagePullPolicy": "IfNotPresent"},
            "rules": {"imagePullPolicy": {"canEdit": False}},
        }
        assert run(spec(imagePullPolicy="IfNotPresent"), (DEPT, doc))[1] == []
        assert fields(run(spec(imagePullPolicy="Always"), (DEPT, doc))[1]) == ["imagePullPolicy"]

    def test_boolean_can_edit(self) -> None:
        doc = {"defaults": {"createHomeDir": True}, "rules": {"createHomeDir": {"canEdit": False}}}
        result, issues = run(spec(), (DEPT, doc))
        assert issues == [] and result["spec"]["createHomeDir"] is True
        assert fields(run(spec(createHomeDir=False), (DEPT, doc))[1]) == ["createHomeDir"]

    def test_required_satisfied_by_a_default(self) -> None:
        doc = {
            "defaults": {"imagePullPolicy": "Always"},
            "rules": {"imagePullPolicy": {"required": True}},
        }
        result, issues = run(spec(), (DEPT, doc))
        assert issues == [] and result["spec"]["imagePullPolicy"] == "Always"

    def test_required_without_a_value(self) -> None:
        _, issues = run(spec(), (DEPT, {"rules": {"workingDir": {"required": True}}}))
        assert issues == [
            Issue(field="workingDir", details="a value is required (rule from department research)")
        ]

    def test_every_issue_is_reported(self) -> None:
        rules = {
            "rules": {
                "compute": {"gpuDevicesRequest": {"max": 2}, "cpuCoreRequest": {"max": 4}},
                "backoffLimit": {"max": 1},
                "workingDir": {"required": True},
            }
        }
        _, issues = run(
            spec(compute={"gpuDevicesRequest": 3, "cpuCoreRequest": 8}, backoffLimit=5),
            (DEPT, rules),
        )
        assert sorted(fields(issues)) == [
            "backoffLimit",
            "compute.cpuCoreRequest",
            "compute.gpuDevicesRequest",
            "workingDir",
        ]


class TestArrays:
    def test_arrays_cannot_be_edited_by_default(self) -> None:
        doc = {"defaults": {"nodePools": ["a100", "default"]}}
        result, issues = run(spec(), (DEPT, doc))
        assert issues == [] and result["spec"]["nodePools"] == ["a100", "default"]
        assert run(spec(nodePools=["a100", "default"]), (DEPT, doc))[1] == []
        _, issues = run(spec(nodePools=["default"]), (DEPT, doc))
        assert fields(issues) == ["nodePools"]
        assert "department research" in issues[0].details

    def test_can_edit_true_lets_a_submission_change_an_array(self) -> None:
        doc = {"defaults": {"nodePools": ["a100"]}, "rules": {"nodePools": {"canEdit": True}}}
        assert run(spec(nodePools=["default"]), (DEPT, doc))[1] == []

    def test_required_array_needs_an_item(self) -> None:
        _, issues = run(spec(), (DEPT, {"rules": {"nodePools": {"required": True}}}))
        assert fields(issues) == ["nodePools"]
        assert (
            run(
                spec(nodePools=["x"]),
                (DEPT, {"rules": {"nodePools": {"required": True, "canEdit": True}}}),
            )[1]
            == []
        )


class TestItemized:
    DOC = {
        "defaults": {
            "compute": {
                "extendedResources": {
                    "instances": [
                        {"resource": "default/cpu", "quantity": "5"},
                        {"resource": "default/memory", "quantity": "4M"},
                    ],
                    "attributes": {"quantity": "3"},
                }
            }
        },
        "rules": {
            "compute": {
                "extendedResources": {
                    "instances": {"locked": ["default/cpu"]},
                    "attributes": {"quantity": {"required": True}},
                }
            }
        },
    }

    def test_run_ai_worked_example(self) -> None:
        request = [
            {"resource": "default/memory", "exclude": True},
            {"resource": "added/cpu"},
            {"resource": "added/memory", "quantity": "5M"},
        ]
        result, issues = run(spec(compute={"extendedResources": request}), (DEPT, self.DOC))
        assert issues == []
        assert result["spec"]["compute"]["extendedResources"] == [
            {"resource": "default/cpu", "quantity": "5"},
            {"resource": "added/cpu", "quantity": "3"},
            {"resource": "added/memory", "quantity": "5M"},
        ]

    def test_locked_item_cannot_be_excluded_or_changed(self) -> None:
        request = [{"resource": "default/cpu", "exclude": True}]
        _, issues = run(spec(compute={"extendedResources": request}), (DEPT, self.DOC))
        assert fields(issues) == ["compute.extendedResources[default/cpu]"]
        assert "locked" in issues[0].details and "department research" in issues[0].details
        request = [{"resource": "default/cpu", "quantity": "6"}]
        assert fields(run(spec(compute={"extendedResources": request}), (DEPT, self.DOC))[1]) == [
            "compute.extendedResources[default/cpu]"
        ]
        # Restating a locked item unchanged is fine.
        request = [{"resource": "default/cpu", "quantity": "5"}]
        assert run(spec(compute={"extendedResources": request}), (DEPT, self.DOC))[1] == []

    def test_non_locked_default_item_excluded(self) -> None:
        env = {
            "defaults": {
                "environmentVariables": {
                    "instances": [{"name": "HF_HOME", "value": "/c"}, {"name": "X", "value": "1"}]
                }
            }
        }
        result, issues = run(
            spec(environmentVariables=[{"name": "X", "exclude": True}]), (DEPT, env)
        )
        assert issues == []
        assert result["spec"]["environmentVariables"] == [{"name": "HF_HOME", "value": "/c"}]

    def test_can_add_false(self) -> None:
        doc = {"rules": {"storage": {"hostPath": {"instances": {"canAdd": False}}}}}
        host = {"name": "h", "path": "/x", "mountPath": "/x"}
        _, issues = run(spec(storage={"hostPath": [host]}), (DEPT, doc))
        assert fields(issues) == ["storage.hostPath[h]"]
        assert (
            run(
                spec(
                    storage={
                        "pvc": [{"name": "p", "path": "/p", "claimName": "c", "existingPvc": True}]
                    }
                ),
                (DEPT, doc),
            )[1]
            == []
        )

    def test_attribute_rules(self) -> None:
        doc = {
            "rules": {
                "labels": {"attributes": {"value": {"options": [{"value": "ml"}, {"value": "cv"}]}}}
            }
        }
        assert run(spec(labels=[{"name": "team", "value": "ml"}]), (DEPT, doc))[1] == []
        _, issues = run(spec(labels=[{"name": "team", "value": "ops"}]), (DEPT, doc))
        assert fields(issues) == ["labels[team].value"]

    def test_imposed_assets_are_added(self) -> None:
        doc = {
            "imposedAssets": [
                {
                    "id": "datasets",
                    "kind": "pvc",
                    "source": {"existingPvc": True, "claimName": "datasets", "path": "/datasets"},
                }
            ]
        }
        result, issues = run(spec(), (DEPT, doc))
        assert issues == []
        assert result["spec"]["storage"]["pvc"] == [
            {"name": "datasets", "existingPvc": True, "claimName": "datasets", "path": "/datasets"}
        ]

    def test_imposed_asset_is_validated(self) -> None:
        doc = {"imposedAssets": [{"id": "x", "kind": "nfs", "source": {"server": "s"}}]}
        assert [i.field for i in problems(doc)] == [
            "imposedAssets[0].source",
            "imposedAssets[0].source",
        ]
        assert fields(problems(doc, "inference")) == ["imposedAssets[0]"]


# --- scopes ------------------------------------------------------------------------------------


class TestScopes:
    def test_defaults_stack_most_specific_wins(self) -> None:
        result, issues = run(
            spec(),
            (TENANT, {"defaults": {"backoffLimit": 1, "workingDir": "/t"}}),
            (DEPT, {"defaults": {"backoffLimit": 2, "compute": {"cpuCoreRequest": 2}}}),
            (PROJECT, {"defaults": {"backoffLimit": 3}}),
        )
        assert issues == []
        assert result["spec"]["backoffLimit"] == 3
        assert result["spec"]["workingDir"] == "/t"
        assert result["spec"]["compute"]["cpuCoreRequest"] == 2

    def test_conflicting_rule_is_refused_naming_field_and_owner(self) -> None:
        dept = scoped(DEPT, {"rules": {"compute": {"gpuDevicesRequest": {"max": 2}}}})
        project = scoped(
            PROJECT,
            {"rules": {"compute": {"gpuDevicesRequest": {"max": 1}}, "backoffLimit": {"max": 5}}},
        )
        issues = engine.ownership_conflicts(project, [dept])
        assert fields(issues) == ["compute.gpuDevicesRequest"]
        assert issues[0].details.startswith(
            'Field "compute.gpuDevicesRequest" already has rules in department: "research"'
        )

    def test_broader_policy_conflicting_with_a_narrower_one_is_refused(self) -> None:
        project = scoped(PROJECT, {"rules": {"backoffLimit": {"max": 5}}})
        cluster = scoped(CLUSTER, {"rules": {"backoffLimit": {"max": 3}}})
        issues = engine.ownership_conflicts(cluster, [project])
        assert issues[0].details.startswith(
            'Field "backoffLimit" already has rules in project: "team-a"'
        )

    def test_allow_override_lets_narrower_scopes_only_tighten(self) -> None:
        dept = scoped(
            DEPT, {"rules": {"compute": {"gpuDevicesRequest": {"max": 4, "allowOverride": True}}}}
        )
        project = scoped(
            PROJECT, {"rules": {"compute": {"gpuDevicesRequest": {"max": 8, "min": 1}}}}
        )
        assert engine.ownership_conflicts(project, [dept]) == []
        eff = engine.merge("training", [dept, project])
        rule = eff.rules["compute.gpuDevicesRequest"].rule
        assert rule.max == 4 and rule.min == 1
        tighter = scoped(PROJECT, {"rules": {"compute": {"gpuDevicesRequest": {"max": 1}}}})
        eff = engine.merge("training", [dept, tighter])
        assert eff.rules["compute.gpuDevicesRequest"].rule.max == 1
        assert eff.rules["compute.gpuDevicesRequest"].sources["max"] == PROJECT

    def test_imposed_assets_are_the_union(self) -> None:
        def asset(name: str) -> dict[str, Any]:
            return {
                "id": name,
                "kind": "pvc",
                "source": {"existingPvc": True, "claimName": name, "path": f"/{name}"},
            }

        eff = effective(
            (DEPT, {"imposedAssets": [asset("a")]}),
            (PROJECT, {"imposedAssets": [asset("b"), asset("a")]}),
        )
        assert [a.id for a, _ in eff.assets] == ["a", "b"]

    def test_describe_names_every_source(self) -> None:
        eff = effective(
            (
                DEPT,
                {
                    "defaults": {"backoffLimit": 3},
                    "rules": {"compute.gpuDevicesRequest": {"max": 2}},
                },
            ),
            (PROJECT, {"defaults": {"backoffLimit": 4}, "rules": {"backoffLimit": {"max": 5}}}),
        )
        described = engine.describe(eff)
        assert [(d.field, d.value, str(d.source)) for d in described.defaults] == [
            ("backoffLimit", 4, "project team-a")
        ]
        assert [(r.field, str(r.source)) for r in described.rules] == [
            ("backoffLimit", "project team-a"),
            ("compute.gpuDevicesRequest", "department research"),
        ]


# --- evaluation ----------------------------------------------------------------------------------


class TestEvaluation:
    def test_system_defaults_follow_policy_defaults(self) -> None:
        result, issues = run(
            spec(), (DEPT, {"defaults": {"autoDeletionTimeAfterCompletionSeconds": 604800}})
        )
        assert issues == []
        assert result["spec"]["autoDeletionTimeAfterCompletionSeconds"] == 604800
        assert result["spec"]["backoffLimit"] == 6

    def test_image_is_still_required_without_policy(self) -> None:
        _, issues = run({})
        assert fields(issues) == ["spec.image"]

    def test_default_that_breaks_the_spec_is_an_issue_not_a_crash(self) -> None:
        doc = {"defaults": {"compute": {"gpuPortionRequest": 0.5}}}
        _, issues = run(spec(compute={"gpuDevicesRequest": 2}), (DEPT, doc))
        assert issues and issues[0].field.startswith("compute")

    def test_distributed_worker_and_master_sections(self) -> None:
        doc = {
            "defaults": {
                "worker": {"numWorkers": 2, "compute": {"gpuDevicesRequest": 1}},
                "master": {"compute": {"gpuDevicesRequest": 0}},
            },
            "rules": {
                "worker": {
                    "numWorkers": {"min": 1, "max": 16},
                    "compute": {"gpuDevicesRequest": {"max": 8}},
                }
            },
        }
        result, issues = run(
            spec(),
            (DEPT, doc),
            kind="distributed",
            masterSpecSameAsWorker=False,
            masterSpec={"image": "m"},
        )
        assert issues == []
        assert result["spec"]["numWorkers"] == 2
        assert result["spec"]["compute"]["gpuDevicesRequest"] == 1
        assert result["masterSpec"]["compute"]["gpuDevicesRequest"] == 0
        _, issues = run(
            spec(numWorkers=20, compute={"gpuDevicesRequest": 9}), (DEPT, doc), kind="distributed"
        )
        assert sorted(fields(issues)) == ["worker.compute.gpuDevicesRequest", "worker.numWorkers"]

    def test_inference_autoscaling_and_serving_port(self) -> None:
        doc = {
            "defaults": {
                "autoscaling": {
                    "minReplicas": 1,
                    "maxReplicas": 2,
                    "metric": "concurrency",
                    "metricThreshold": 100,
                }
            },
            "rules": {
                "autoscaling": {
                    "maxReplicas": {"max": 8},
                    "scaleToZeroRetentionSeconds": {"max": 1800},
                },
                "servingPort": {"protocol": {"options": [{"value": "http"}]}},
            },
        }
        result, issues = run(spec(), (DEPT, doc), kind="inference")
        assert issues == []
        assert result["spec"]["autoscaling"]["maxReplicas"] == 2
        assert "backoffLimit" not in result["spec"]
        _, issues = run(
            spec(
                autoscaling={"maxReplicas": 10}, servingPort={"container": 8000, "protocol": "grpc"}
            ),
            (DEPT, doc),
            kind="inference",
        )
        assert sorted(fields(issues)) == ["autoscaling.maxReplicas", "servingPort.protocol"]

    def test_example_of_the_department_and_project(self) -> None:
        dept = {
            "defaults": {
                "imagePullPolicy": "IfNotPresent",
                "nodePools": ["a100", "default"],
                "backoffLimit": 3,
                "compute": {"cpuCoreRequest": 2, "cpuMemoryRequest": "16G", "gpuDevicesRequest": 1},
            },
            "rules": {
                "imagePullPolicy": {"canEdit": False},
                "compute": {
                    "gpuDevicesRequest": {"min": 0, "max": 2},
                    "cpuMemoryRequest": {"min": "1G", "max": "128G"},
                },
            },
        }
        project = {"defaults": {"nodePools": ["default"]}, "rules": {"backoffLimit": {"max": 5}}}
        _, issues = run(spec(compute={"gpuDevicesRequest": 4}), (DEPT, dept), (PROJECT, project))
        assert issues == [
            Issue(
                field="compute.gpuDevicesRequest",
                details="value must be no greater than 2 (rule from department research)",
            )
        ]
        result, issues = run(
            spec(compute={"gpuDevicesRequest": 2}), (DEPT, dept), (PROJECT, project)
        )
        assert issues == []
        assert result["spec"]["compute"] == {
            "gpuDevicesRequest": 2,
            "cpuCoreRequest": 2.0,
            "cpuMemoryRequest": "16G",
        }
        assert result["spec"]["nodePools"] == ["default"]
        assert result["spec"]["backoffLimit"] == 3


def test_patch_resets_paths_then_merges() -> None:
    stored = compiled(
        {
            "defaults": {"backoffLimit": 3, "compute": {"cpuCoreRequest": 2}},
            "rules": {"compute.gpuDevicesRequest": {"max": 2}},
        }
    )
    patch = compiled({"rules": {"backoffLimit": {"max": 4}}})
    result = engine.patched(stored, patch, ["compute"])
    assert result.defaults == {"backoffLimit": 3}
    assert set(result.rules) == {"backoffLimit"}


def test_a_plain_copy_of_a_spec_tree_is_equal_and_shares_nothing_mutable() -> None:
    from berth.policy.engine.evaluate import plain_copy

    tree: dict[str, Any] = {"a": [{"b": 1}, ({"c": [2]},)], "d": "e", "f": None}
    copied = plain_copy(tree)
    assert copied == tree
    copied["a"][0]["b"] = 9
    copied["a"][1][0]["c"].append(3)
    assert tree == {"a": [{"b": 1}, ({"c": [2]},)], "d": "e", "f": None}
