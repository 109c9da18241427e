"""Resource quantities as the simulated cluster counts them: whole numbers read directly agree
with the general parser, and everything else still goes through it."""

from __future__ import annotations

import pytest

from berth.scheduler_adapter.simulation.quantity import millis, units

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "expected_units", "expected_millis"),
    [
        (0, 0, 0),
        (4, 4, 4000),
        ("8", 8, 8000),
        ("0012", 12, 12000),
        ("500m", 1, 500),
        ("1.5", 2, 1500),
        ("16Gi", 16 * 2**30, 16 * 2**30 * 1000),
        ("2k", 2000, 2_000_000),
        (0.25, 1, 250),
    ],
)
def test_units_and_millis(
    value: str | int | float, expected_units: int, expected_millis: int
) -> None:
    assert units(value) == expected_units
    assert millis(value) == expected_millis


@pytest.mark.parametrize("value", ["", "²", "-", "1x"])
def test_what_is_not_a_quantity_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        units(value)
