"""Kubernetes resource quantities ("500m", "8G", "16Gi") as integers."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "K": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]{0,2})\s*$")


def parse_quantity(value: str | int | float) -> Decimal:
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(value)
    if match is None or match.group(2) not in _SUFFIXES:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    try:
        return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]
    except InvalidOperation as error:
        raise ValueError(f"not a Kubernetes quantity: {value!r}") from error


def _whole(value: str | int | float) -> int | None:
    """``value`` when it is a plain whole number (a GPU count, most CPU requests): the common
    case, read without a regular expression and decimals."""
    if type(value) is int:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def millis(value: str | int | float) -> int:
    """CPU quantity in millicores, rounded up as the cluster does."""
    whole = _whole(value)
    return whole * 1000 if whole is not None else math.ceil(parse_quantity(value) * 1000)


def units(value: str | int | float) -> int:
    """Memory (or any count) quantity as a whole number, rounded up."""
    whole = _whole(value)
    return whole if whole is not None else math.ceil(parse_quantity(value))


def format_bytes(count: int) -> str:
    for suffix, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if count >= size:
            return f"{count / size:.3g}{suffix}"
    return str(count)
