"""A bounded fuzz run in CI (`make fuzz MINUTES=10` runs the long one): see tests/fuzz.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fuzz import Target, check, run_for


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    served = Target()
    yield served
    served.close()


def test_whatever_arrives_gets_an_answer_in_its_dialect(target: Target) -> None:
    run_for(target, int(os.environ.get("FUZZ_EXAMPLES", "300")))


@pytest.mark.parametrize(
    ("family", "status", "body"),
    [("openai", 500, b'{"error": {"message": "x"}}'),
     ("anthropic", 400, b'{"error": {"message": "x"}}'),
     ("gemini", 400, b'{"error": {"message": "x", "code": 400}}')],
)  # fmt: skip
def test_the_fuzz_checks_can_fail(family: str, status: int, body: bytes) -> None:
    """A 5xx, or an error in another dialect's shape, is caught."""
    with pytest.raises((AssertionError, KeyError)):
        check(family, "/p", status, "application/json", body)
