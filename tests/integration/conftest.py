"""Integration tests' administrator: every catalog a test starts makes admin@example.com System
administrator (as `berth up` does for its user), so tests that are not about access rules act
as an administrator."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

ADMIN_EMAIL = "admin@example.com"


@pytest.fixture(scope="session", autouse=True)
def administrator() -> Iterator[str]:
    previous = os.environ.get("BERTH_ADMIN")
    os.environ["BERTH_ADMIN"] = ADMIN_EMAIL
    yield ADMIN_EMAIL
    if previous is None:
        os.environ.pop("BERTH_ADMIN", None)
    else:
        os.environ["BERTH_ADMIN"] = previous
