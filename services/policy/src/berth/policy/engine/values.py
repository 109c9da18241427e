"""Values of policy fields: numbers and quantities, what a field accepts, how values read back,
and reaching into a nested spec by path."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from berth.contracts.quantity import quantity_to_decimal
from berth.policy.engine.fields import FieldInfo


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def quantity(value: Any) -> Decimal | None:
    """A number or a quantity string (``16Gi``) as a Decimal; None when it is neither."""
    if is_number(value):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return quantity_to_decimal(value)
        except ValueError:
            return None
    return None


def bound(info: FieldInfo, value: Any) -> Decimal | None:
    """A ``min``/``max`` as a Decimal in the field's own terms (None if unset or malformed)."""
    if value is None:
        return None
    if info.vtype == "quantity":
        return quantity(value)
    return Decimal(str(value)) if is_number(value) else None


def value_problem(info: FieldInfo, value: Any) -> str | None:
    """Why ``value`` cannot be a value of this field, or None."""
    vtype = info.vtype
    if vtype == "boolean" and not isinstance(value, bool):
        return f"{value!r} is not a boolean"
    if vtype == "string":
        if not isinstance(value, str):
            return f"{value!r} is not a string"
        if info.choices and value not in info.choices:
            return f"{value!r} is not one of {', '.join(map(str, info.choices))}"
    if vtype == "integer" and not (isinstance(value, int) and not isinstance(value, bool)):
        return f"{value!r} is not an integer"
    if vtype == "number" and not is_number(value):
        return f"{value!r} is not a number"
    if vtype == "quantity" and quantity(value) is None:
        return f"{value!r} is not a quantity (e.g. 8G, 16Gi, 500M)"
    if vtype == "array" and not (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        return f"{value!r} is not a list of strings"
    return None


def instances_problem(info: FieldInfo, value: Any) -> str | None:
    """Why ``value`` cannot be the default items of an itemized field, or None."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        return "expected a list of items"
    assert info.item_model is not None
    known = set(info.item_model.model_fields)
    for item in value:
        if info.key and not item.get(info.key):
            return f"every item needs its {info.key}"
        unknown = set(item) - known
        if unknown:
            return f"unknown attribute {sorted(unknown)[0]!r}"
    return None


def same(info: FieldInfo, a: Any, b: Any) -> bool:
    """Equal as values of this field (``1Gi`` and ``1024Mi`` are the same quantity)."""
    if info.vtype == "quantity":
        return quantity(a) == quantity(b)
    return bool(a == b)


def fmt(value: Any) -> str:
    """A value as a rejection names it."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def get_path(data: Mapping[str, Any], parts: tuple[str, ...]) -> Any:
    node: Any = data
    for part in parts:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
        if node is None:
            return None
    return node


def set_path(data: dict[str, Any], parts: tuple[str, ...], value: Any) -> None:
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value
