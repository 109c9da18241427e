"""Resource quantities: which strings are accepted and how many bytes they mean."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel, ValidationError

from berth.contracts.quantity import QUANTITY_PATTERN, Quantity, is_quantity, quantity_to_bytes

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0", 0),
        ("512", 512),
        ("8G", 8_000_000_000),
        ("500M", 500_000_000),
        ("16Gi", 16 * 2**30),
        ("1.5Gi", 1_610_612_736),
        ("100Ki", 102_400),
        ("2k", 2000),
        ("2K", 2000),
        ("1T", 10**12),
        ("1Ei", 2**60),
        ("1e3", 1000),
        ("1E", 10**18),
        ("100m", 1),  # a tenth of a byte is rounded up, as Kubernetes does
        (".5Ki", 512),
    ],
)
def test_quantity_to_bytes(quantity: str, expected: int) -> None:
    assert quantity_to_bytes(quantity) == expected


@pytest.mark.parametrize(
    "bad", ["", "G", "8X", "8 G", "8gb", "8GB", "-1G", "+1G", "1.2.3", "1e", "1e999", "Gi8"]
)
def test_invalid_quantities_are_rejected(bad: str) -> None:
    assert not is_quantity(bad)
    with pytest.raises(ValueError, match="is not a quantity"):
        quantity_to_bytes(bad)


@pytest.mark.parametrize("value", ["8G", "16Gi", "500M", "8X", "1e3", "-1"])
def test_published_pattern_agrees_with_the_parser(value: str) -> None:
    assert (re.fullmatch(QUANTITY_PATTERN, value) is not None) == is_quantity(value)


class Memory(BaseModel):
    size: Quantity | None = None


def test_quantity_type_names_the_field_and_the_value() -> None:
    with pytest.raises(ValidationError) as caught:
        Memory(size="8X")

    (error,) = caught.value.errors()
    assert error["loc"] == ("size",)
    assert "'8X' is not a quantity" in error["msg"]
    assert Memory(size="16Gi").size == "16Gi"
