"""What the outbox relay refuses to publish before trying (it sets such a row aside)."""

from __future__ import annotations

import pytest

from berth.shared.outbox import subject_problem


@pytest.mark.parametrize(
    "subject",
    [
        "workload.phase-changed.v1.wl-0123",
        "a",
        "a.b-c_d.e",
    ],
)
def test_a_valid_subject_has_no_problem(subject: str) -> None:
    assert subject_problem(subject) is None


@pytest.mark.parametrize(
    "subject",
    [
        "",
        ".a",
        "a.",
        "a..b",
        "a.*.c",
        "a.>",
        "a.>b",
        "a.b c",
        "a.b\tc",
        "a.b\n",
        "a.b\u2003c",
    ],
)
def test_an_empty_token_a_wildcard_or_whitespace_is_invalid(subject: str) -> None:
    assert subject_problem(subject) == f"invalid subject {subject!r}"


def test_the_last_token_must_be_a_subject_id() -> None:
    # Valid for NATS, but not as the id an event is about.
    problem = subject_problem("a.b.wl/1")
    assert problem is not None
    assert "invalid subject" not in problem
