"""The decimal integers of a closed range as a short list of digit patterns, for grammars.

A pattern is a sign and a sequence of digit classes (``"3"``, ``"[1-8]"``, ``"[0-9]"``); the
range's integers, written canonically (no leading zeros, no ``-0``), are exactly the strings
the patterns match. The split is the classic one: by length, then for equal-length ends
``a <= b`` by their first differing digit (``a``'s tail up to all nines, a full middle
block, all zeros up to ``b``'s tail), so a range of ``L``-digit numbers takes ``O(L)``
patterns. Rendered as GBNF (`gbnf`) or as a Python regular expression (`regex`), the same
patterns: the tests check the regex against the range itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["DigitPattern", "gbnf", "integer_bounds", "integer_patterns", "regex"]


@dataclass(frozen=True)
class DigitPattern:
    """One pattern: ``negative`` and its digit classes, each ``(low, high)``."""

    negative: bool
    digits: tuple[tuple[int, int], ...]


def _between(a: str, b: str) -> list[tuple[tuple[int, int], ...]]:
    """Digit-class sequences matching exactly the numbers from ``a`` to ``b`` (equal
    length, ``a <= b``, leading zeros allowed)."""
    if not a:
        return [()]
    head_a, head_b, rest = int(a[0]), int(b[0]), len(a) - 1
    if head_a == head_b:
        return [((head_a, head_a), *tail) for tail in _between(a[1:], b[1:])]
    low_full, high_full = a[1:] == "0" * rest, b[1:] == "9" * rest
    out = []
    if not low_full:
        out += [((head_a, head_a), *tail) for tail in _between(a[1:], "9" * rest)]
    first, last = head_a + (0 if low_full else 1), head_b - (0 if high_full else 1)
    if first <= last:
        out.append(((first, last), *[(0, 9)] * rest))
    if not high_full:
        out += [((head_b, head_b), *tail) for tail in _between("0" * rest, b[1:])]
    return out


def _magnitudes(low: int, high: int) -> list[tuple[tuple[int, int], ...]]:
    """Patterns of the canonical decimal strings of ``low..high`` (``0 <= low <= high``)."""
    out: list[tuple[tuple[int, int], ...]] = []
    if low == 0:
        out.append(((0, 0),))
        low = 1
    for length in range(len(str(low)), len(str(high)) + 1):
        a, b = max(low, 10 ** (length - 1)), min(high, 10**length - 1)
        if a <= b:
            out += _between(str(a), str(b))
    return out


def integer_patterns(low: int, high: int) -> list[DigitPattern]:
    """Args:
        low: The least integer.
        high: The greatest integer (``low <= high``).

    Returns:
        Patterns matching exactly the canonical decimal strings of ``low..high``."""
    out = []
    if low < 0:
        top = -high if high < 0 else 1
        out += [DigitPattern(True, d) for d in _magnitudes(top, -low)]
    if high >= 0:
        out += [DigitPattern(False, d) for d in _magnitudes(max(low, 0), high)]
    return out


def integer_bounds(schema: dict[str, Any], limit: int) -> tuple[int, int] | None:
    """Args:
        schema: An integer JSON schema.
        limit: The magnitude an unbounded side stops at.

    Returns:
        The closed range its ``minimum``/``maximum``/``exclusiveMinimum``/
        ``exclusiveMaximum`` allow (numeric or draft-4 boolean exclusives), or None when it
        has no bound."""

    def number(key: str) -> int | float | None:
        value = schema.get(key)
        return None if isinstance(value, bool) or not isinstance(value, int | float) else value

    minimum, maximum = number("minimum"), number("maximum")
    above, below = number("exclusiveMinimum"), number("exclusiveMaximum")
    if minimum is None and maximum is None and above is None and below is None:
        return None
    low, high = -limit, limit
    if minimum is not None:
        low = max(low, math.ceil(minimum) + (schema.get("exclusiveMinimum") is True))
    if maximum is not None:
        high = min(high, math.floor(maximum) - (schema.get("exclusiveMaximum") is True))
    if above is not None:
        low = max(low, math.floor(above) + 1)
    if below is not None:
        high = min(high, math.ceil(below) - 1)
    return low, high


def _class(low: int, high: int, quote: bool) -> str:
    if low == high:
        return f'"{low}"' if quote else str(low)
    return f"[{low}-{high}]"


def gbnf(patterns: list[DigitPattern]) -> str:
    """Args:
        patterns: From `integer_patterns` (at least one).

    Returns:
        A GBNF expression matching them."""
    alternatives = [
        " ".join(['"-"'] * p.negative + [_class(lo, hi, True) for lo, hi in p.digits])
        for p in patterns
    ]
    return "(" + " | ".join(alternatives) + ")"


def regex(patterns: list[DigitPattern]) -> str:
    """Args:
        patterns: From `integer_patterns`.

    Returns:
        A Python regular expression matching them (use with ``re.fullmatch``)."""
    return "|".join(
        "-" * p.negative + "".join(_class(lo, hi, False) for lo, hi in p.digits) for p in patterns
    )
