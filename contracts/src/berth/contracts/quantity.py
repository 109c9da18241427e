"""Kubernetes-style resource quantities ("8G", "16Gi", "500M") as used in workload specs."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

QUANTITY_PATTERN = (
    r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:[eE][+-]?[0-9]{1,2}|Ki|Mi|Gi|Ti|Pi|Ei|[mkKMGTPE])?$"
)
"""A non-negative decimal with an optional binary (Ki..Ei), decimal (k/K..E, m) or exponent suffix.

Stricter than Run:ai's pattern (no sign, no free mix of suffix letters) so that every accepted
value has exactly one meaning in bytes.
"""

_QUANTITY_RE = re.compile(QUANTITY_PATTERN)
_SPLIT_RE = re.compile(r"^(?P<number>[0-9.]+)(?P<suffix>.*)$")

_MULTIPLIERS: dict[str, Decimal] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    # Kubernetes spells kilo "k" only; Run:ai and users write "K" too, so both mean 1000.
    "K": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


def is_quantity(value: str) -> bool:
    return _QUANTITY_RE.fullmatch(value) is not None


def quantity_to_decimal(value: str) -> Decimal:
    """The exact numeric value of a quantity ("1.5Gi" -> 1610612736)."""
    match = _SPLIT_RE.match(value) if is_quantity(value) else None
    if match is None:
        raise ValueError(f"{value!r} is not a quantity (e.g. 8G, 16Gi, 500M)")
    number, suffix = match["number"], match["suffix"]
    try:
        if suffix in _MULTIPLIERS:
            return Decimal(number) * _MULTIPLIERS[suffix]
        return Decimal(number) * (Decimal(10) ** int(suffix[1:]))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{value!r} is not a quantity (e.g. 8G, 16Gi, 500M)") from None


def quantity_to_bytes(value: str) -> int:
    """Bytes in a memory quantity, rounded up as Kubernetes does ("500M" -> 500000000)."""
    return math.ceil(quantity_to_decimal(value))


def _validate_quantity(value: str) -> str:
    quantity_to_decimal(value)
    return value


Quantity = Annotated[
    str,
    AfterValidator(_validate_quantity),
    # The pattern is published so that non-Python clients validate the same way.
    WithJsonSchema({"type": "string", "pattern": QUANTITY_PATTERN, "examples": ["8G", "16Gi"]}),
]
"""A resource quantity string, validated with a readable message and published with its pattern."""
