"""breaking_changes: what may and may not change in a published schema."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from berth.contracts.compat import breaking_changes
from berth.contracts.events import SubmissionReceivedV1
from berth.contracts.workload import WorkloadSubmission

pytestmark = pytest.mark.unit


class Inner(BaseModel):
    size: int = Field(ge=0, le=10)


class V1(BaseModel):
    name: str
    count: int | None = None
    mode: Literal["a", "b"] = "a"
    inner: Inner | None = None
    tags: list[str] = []


def schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def test_identical_schemas_are_compatible() -> None:
    assert breaking_changes(schema(V1), schema(V1)) == []


def test_added_optional_field_is_compatible() -> None:
    class V2(V1):
        comment: str | None = None
        extra: Inner | None = None

    assert breaking_changes(schema(V1), schema(V2)) == []


def test_removed_field_is_breaking() -> None:
    class V2(BaseModel):
        name: str
        mode: Literal["a", "b"] = "a"
        inner: Inner | None = None
        tags: list[str] = []

    assert breaking_changes(schema(V1), schema(V2)) == ["count: property removed"]


def test_retyped_field_is_breaking() -> None:
    class V2(V1):
        count: str | None = None  # type: ignore[assignment]

    problems = breaking_changes(schema(V1), schema(V2))

    assert problems == ["count: type changed from integer|null to null|string"]


def test_field_no_longer_nullable_is_breaking() -> None:
    class V2(V1):
        count: int = 0  # type: ignore[assignment]

    assert breaking_changes(schema(V1), schema(V2)) == [
        "count: type changed from integer|null to integer"
    ]


def test_integer_widened_to_number_is_compatible() -> None:
    class V2(V1):
        count: float | None = None  # type: ignore[assignment]

    assert breaking_changes(schema(V1), schema(V2)) == []


def test_new_required_field_is_breaking() -> None:
    class V2(V1):
        owner: str

    assert breaking_changes(schema(V1), schema(V2)) == ["owner: new required property"]


def test_optional_field_made_required_is_breaking() -> None:
    class V2(V1):
        count: int | None  # type: ignore[assignment]

    assert breaking_changes(schema(V1), schema(V2)) == ["count: new required property"]


def test_removed_enum_value_is_breaking_and_added_one_is_not() -> None:
    class Narrow(V1):
        mode: Literal["a"] = "a"  # type: ignore[assignment]

    class Wide(V1):
        mode: Literal["a", "b", "c"] = "a"  # type: ignore[assignment]

    assert breaking_changes(schema(V1), schema(Narrow)) == ["mode: enum values removed: 'b'"]
    assert breaking_changes(schema(V1), schema(Wide)) == []


def test_narrower_bounds_are_breaking_and_wider_are_not() -> None:
    class Narrow(BaseModel):
        size: int = Field(ge=1, le=5)

    class Wide(BaseModel):
        size: int = Field(ge=0, le=100)

    class V2Narrow(V1):
        inner: Narrow | None = None  # type: ignore[assignment]

    class V2Wide(V1):
        inner: Wide | None = None  # type: ignore[assignment]

    assert breaking_changes(schema(V1), schema(V2Narrow)) == [
        "inner<Inner>.size: narrower bound: minimum 0 -> 1",
        "inner<Inner>.size: narrower bound: maximum 10 -> 5",
    ]
    assert breaking_changes(schema(V1), schema(V2Wide)) == []


def test_new_bound_or_pattern_is_breaking() -> None:
    class V2(V1):
        name: str = Field(min_length=3, pattern="^[a-z]+$")

    assert breaking_changes(schema(V1), schema(V2)) == [
        "name: narrower bound: minLength None -> 3",
        "name: pattern changed: None -> '^[a-z]+$'",
    ]


def test_changed_list_item_type_is_breaking() -> None:
    class V2(V1):
        tags: list[int] = []  # type: ignore[assignment]

    assert breaking_changes(schema(V1), schema(V2)) == [
        "tags[]: type changed from string to integer"
    ]


def test_forbidding_extra_fields_is_breaking() -> None:
    class V2(V1):
        model_config = ConfigDict(extra="forbid")

    assert breaking_changes(schema(V1), schema(V2)) == [
        "<root>: additional properties no longer allowed"
    ]


class Cat(BaseModel):
    kind: Literal["cat"] = "cat"
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"] = "dog"
    good: bool = True


class Bird(BaseModel):
    kind: Literal["bird"] = "bird"


def union(*members: type[BaseModel]) -> dict[str, Any]:
    if len(members) == 1:
        return schema(members[0])
    members_union: Any = members[0]
    for member in members[1:]:
        members_union = members_union | member
    result: dict[str, Any] = TypeAdapter(
        Annotated[members_union, Field(discriminator="kind")]
    ).json_schema()
    return result


def test_union_variants_may_be_added_but_not_removed() -> None:
    assert breaking_changes(union(Cat, Dog), union(Cat, Dog, Bird)) == []
    assert breaking_changes(union(Cat, Dog), union(Cat)) == ["<root>: variant Dog removed"]


def test_change_inside_a_union_variant_is_found() -> None:
    class Dog(BaseModel):  # same name as the published variant, one field retyped
        kind: Literal["dog"] = "dog"
        good: str = "yes"

    assert breaking_changes(union(Cat, globals()["Dog"]), union(Cat, Dog)) == [
        "<Dog>.good: type changed from boolean to string"
    ]


def test_recursive_schemas_terminate() -> None:
    class Node(BaseModel):
        value: int
        children: list[Node] = []

    Node.model_rebuild()

    assert breaking_changes(schema(Node), schema(Node)) == []


def test_current_contracts_are_compatible_with_themselves() -> None:
    submission = TypeAdapter(WorkloadSubmission).json_schema()
    event = SubmissionReceivedV1.model_json_schema()

    assert breaking_changes(submission, submission) == []
    assert breaking_changes(event, event) == []


def test_removing_a_spec_field_from_the_submission_is_caught() -> None:
    old = TypeAdapter(WorkloadSubmission).json_schema()
    new = TypeAdapter(WorkloadSubmission).json_schema()
    del new["$defs"]["WorkspaceSpec"]["properties"]["backoffLimit"]
    new["$defs"]["Compute"]["properties"]["gpuDevicesRequest"] = {"type": "string"}

    assert sorted(breaking_changes(old, new)) == [
        "<WorkspaceSubmission>.spec.backoffLimit: property removed",
        "<WorkspaceSubmission>.spec.compute<Compute>.gpuDevicesRequest: "
        "type changed from integer|null to string",
    ]
