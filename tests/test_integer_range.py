"""Integer ranges as digit patterns: the regex rendering against the range itself."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_erase.models.integer_range import (
    gbnf,
    integer_bounds,
    integer_patterns,
    regex,
)

BOUND = 10**9


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-BOUND, BOUND),
    st.integers(0, BOUND),
    st.lists(st.integers(-2 * BOUND, 2 * BOUND), max_size=20),
)
def test_the_patterns_match_exactly_the_canonical_integers_of_the_range(
    low: int, width: int, samples: list[int]
) -> None:
    high = low + width
    pattern = re.compile(regex(integer_patterns(low, high)))
    near = [low - 1, low, low + 1, high - 1, high, high + 1, 0, -1, 1, 9, 10, -10]
    for n in near + samples:
        assert bool(pattern.fullmatch(str(n))) == (low <= n <= high), n
    for text in ("-0", "00", f"0{abs(low) + 1}", "+1", ""):
        assert not pattern.fullmatch(text)


@given(st.integers(-BOUND, BOUND), st.integers(0, BOUND))
def test_a_range_takes_a_number_of_patterns_linear_in_its_digits(low: int, width: int) -> None:
    patterns = integer_patterns(low, low + width)
    digits = len(str(max(abs(low), abs(low + width))))
    assert len(patterns) <= 2 * (2 * digits + 1)
    assert gbnf(patterns).startswith("(") and "[0-9]" in gbnf(integer_patterns(0, 99))


@pytest.mark.parametrize(
    ("schema", "bounds"),
    [
        ({"type": "integer"}, None),
        ({"type": "integer", "minimum": 0}, (0, 10**4)),
        ({"type": "integer", "exclusiveMinimum": -1000, "exclusiveMaximum": 1000}, (-999, 999)),
        ({"type": "integer", "minimum": 0.5, "maximum": 7.5}, (1, 7)),
        ({"type": "integer", "exclusiveMinimum": 2.5, "exclusiveMaximum": 6.5}, (3, 6)),
        (  # draft-4 boolean exclusives
            {"type": "integer", "minimum": 1, "maximum": 5, "exclusiveMaximum": True},
            (1, 4),
        ),
        ({"type": "integer", "maximum": 3, "exclusiveMinimum": False}, (-(10**4), 3)),
    ],
)
def test_integer_bounds_read_every_form(
    schema: dict[str, object], bounds: tuple[int, int] | None
) -> None:
    assert integer_bounds(schema, 10**4) == bounds
