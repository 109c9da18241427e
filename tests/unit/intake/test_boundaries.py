"""What intake refuses at its boundary, before anything else looks at a submission."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from berth.contracts import boundaries
from berth.contracts.envelope import RawEvent
from berth.intake import validation


def submission(**spec: Any) -> dict[str, Any]:
    return {
        "submission": {
            "kind": "training",
            "name": "ok",
            "projectId": "team-a",
            "spec": {"image": "img:1", **spec},
        }
    }


def issues(data: dict[str, Any]) -> list[tuple[str, str]]:
    size = len(json.dumps(data, allow_nan=True))
    found = validation.at_the_boundary(data, size)
    parsed = validation.parse("w1", data)
    if isinstance(parsed, list):
        found += parsed
    return [(i.field, i.details) for i in found]


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"compute": {"gpuDevicesRequest": 10**40}}, "spec.compute.gpuDevicesRequest", "too large"),
        ({"compute": {"gpuDevicesRequest": 65}}, "spec.compute.gpuDevicesRequest", "limit of 64"),
        ({"compute": {"cpuCoreRequest": math.nan}}, "spec.compute.cpuCoreRequest", "finite"),
        ({"compute": {"cpuCoreRequest": math.inf}}, "spec.compute.cpuCoreRequest", "finite"),
        ({"compute": {"cpuMemoryRequest": "100Pi"}}, "spec.compute.cpuMemoryRequest", "limit"),
        ({"command": "run\x00me"}, "spec.command", "NUL"),
        ({"args": "x " * 40_000}, "spec.args", "the limit is 65536"),
        ({"labels": [{"name": "Team", "value": "ML Ops"}]}, "spec.labels.0.value", "label value"),
        ({"labels": [{"name": "a b", "value": "x"}]}, "spec.labels.0.name", "label key"),
        ({"annotations": [{"name": "/x", "value": "1"}]}, "spec.annotations.0.name", "prefix"),
        (
            {"environmentVariables": [{"name": "1BAD", "value": "x"}]},
            "spec.environmentVariables.0.name",
            "environment variable name",
        ),
        (
            {"annotations": [{"name": "berth.dev/sim-runtime-seconds", "value": "nan"}]},
            "spec.annotations.0.value",
            "number of seconds",
        ),
        (
            {"annotations": [{"name": "berth.dev/sim-runtime-seconds", "value": "-1"}]},
            "spec.annotations.0.value",
            "number of seconds",
        ),
    ],
)
def test_a_bad_value_is_named(spec: dict[str, Any], field: str, words: str) -> None:
    found = issues(submission(**spec))
    assert any(f == field and words in d for f, d in found), found


def test_annotations_are_limited_in_total_as_kubernetes_does() -> None:
    # Unreachable through intake alone (a submission is at most as large), but templates and
    # policies add annotations too.
    big = [{"name": f"k{i}", "value": "x" * 100_000} for i in range(3)]
    [issue] = boundaries.kubernetes_names({"spec": {"annotations": big}})
    assert issue.field == "spec.annotations"
    assert "the limit is 262144" in issue.details


def test_a_good_submission_passes() -> None:
    data = submission(
        compute={"gpuDevicesRequest": 8, "cpuCoreRequest": 4, "cpuMemoryRequest": "64Gi"},
        labels=[{"name": "team", "value": "ml-ops"}, {"name": "example.com/tier", "value": ""}],
        environmentVariables=[{"name": "_OK.name-1", "value": "x"}],
        annotations=[{"name": "berth.dev/sim-runtime-seconds", "value": "30"}],
    )
    assert issues(data) == []


def test_an_oversized_submission_is_refused_by_its_size_alone() -> None:
    [issue] = validation.at_the_boundary({}, boundaries.MAX_SUBMISSION_BYTES + 1)
    assert issue.field == "submission"
    assert "limit is 262144" in issue.details


@pytest.mark.parametrize("workload_id", ["x\n", "a b", "x.>", "", "x" * 65, "é"])
def test_workload_ids_are_matched_whole(workload_id: str) -> None:
    assert boundaries.workload_id_problem(workload_id)
    parsed = validation.parse(workload_id, submission())
    assert isinstance(parsed, list)
    assert parsed[0].field == "subject"


@pytest.mark.parametrize("subject", ["x\n", "a b", "x.>", "", "*"])
def test_an_envelope_subject_must_be_one_token(subject: str) -> None:
    envelope = {"source": "/t", "type": "berth.submission.requested", "version": 1}
    with pytest.raises(ValueError, match="subject id"):
        RawEvent.model_validate({**envelope, "subject": subject, "actor": {"email": "a"}})


def test_what_cannot_be_stored_is_recorded_readably() -> None:
    stored = boundaries.storable({"a": math.nan, "b": ["x\x00y", 10**40], "c": 1.5})
    assert stored == {"a": "nan", "b": ["x\\u0000y", str(10**40)], "c": 1.5}


def test_the_content_hash_ignores_key_order() -> None:
    first = validation.content_hash({"a": 1, "b": {"c": 2, "d": 3}})
    assert first == validation.content_hash({"b": {"d": 3, "c": 2}, "a": 1})
    assert first != validation.content_hash({"a": 2, "b": {"c": 2, "d": 3}})


_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.text(alphabet=st.sampled_from("ab\x00.")),
)
_json_like = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet=st.sampled_from("ab\x00")), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(_json_like)
def test_the_quick_check_for_storable_values_agrees_with_the_walk_naming_them(data: Any) -> None:
    named = [
        path
        for path, value in boundaries._walk(data, "")
        if (isinstance(value, float) and not math.isfinite(value))
        or (isinstance(value, str) and "\x00" in value)
        or (
            isinstance(value, int)
            and not isinstance(value, bool)
            and abs(value) > boundaries.MAX_SAFE_INTEGER
        )
    ]
    assert boundaries._all_storable(data) == (not named)
    assert len(boundaries.unstorable_values(data)) == len(named)


class _Frozen(Mapping[str, Any]):
    """A mapping that is not a dict: the checks read any mapping, not only what JSON gives."""

    def __init__(self, items: dict[str, Any]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _as_mappings(value: Any) -> Any:
    if isinstance(value, dict):
        return _Frozen({k: _as_mappings(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_as_mappings(v) for v in value]
    return value


@pytest.mark.parametrize(
    "spec",
    [
        {"compute": {"gpuDevicesRequest": 10**40, "cpuMemoryLimit": "1000Ti"}, "numWorkers": 1e9},
        {"compute": "not a mapping", "autoscaling": {"maxReplicas": 10**6}},
        {"labels": [{"name": "-bad", "value": "x" * 70}, "not an item", {"name": 3}]},
        {"annotations": [{"name": "berth.dev/sim-runtime-seconds", "value": "nan"}, None]},
        {"environmentVariables": [{"name": "1 bad"}, {"value": "no name"}], "command": "x"},
        {"annotations": [{"name": "berth.dev/sim-fail", "value": "sometimes"}]},
    ],
)
def test_the_checks_find_the_same_issues_in_any_mapping(spec: dict[str, Any]) -> None:
    sub = submission(**spec)["submission"]
    sub["masterSpec"] = spec
    checks = (
        boundaries.absurd_quantities,
        boundaries.kubernetes_names,
        boundaries.simulation_annotations,
        boundaries.long_command_lines,
    )
    for check in checks:
        found = check(sub)
        assert found == check(_as_mappings(sub))
    assert (
        boundaries.absurd_quantities(sub)
        or boundaries.kubernetes_names(sub)
        or (boundaries.simulation_annotations(sub))
    )
