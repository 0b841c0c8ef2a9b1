"""Exponential-race keys decided exactly, so every platform picks the same winner.

A race key is E / w with E = -ln(u) an Exponential(1) variate and w a positive integer
weight; the smallest key wins (k-means++ seeding samples with probability proportional to w
this way). u comes from a 64-bit hash h as the dyadic rational (2 * (h >> 12) + 1) / 2**53
(`hashing.uniform_open01`), so a key is a mathematically defined real number. Its float64
value is not: `np.log` takes a CPU-dependent SIMD path whose last bits differ between
machines. So floats only *screen*: any candidate whose float key is within a relative
`SCREEN_MARGIN` of the float minimum is compared exactly, with correctly rounded `decimal`
logarithms and interval bounds, raising the precision until the intervals separate.

Two keys are equal only when their draws are identical: u_a**w_b = u_b**w_a with odd
numerators over powers of two forces w_a = w_b and u_a = u_b. Such ties (and only those) go
to the smaller id, and every other pair separates at a finite precision.
"""

from __future__ import annotations

import math
from decimal import Context, Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from langchain_erase.core.hashing import UNIFORM_BITS, uniform_open01

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["SCREEN_MARGIN", "RaceEntry", "race_less", "race_screen_keys", "race_winner"]

#: Relative error allowed between a float key and the real one. Any libm's log is far more
#: accurate (a few ulps, i.e. ~2**-50); the int-to-float conversion of w and the division
#: add 2**-52. Candidates within this margin of the float minimum are compared exactly.
SCREEN_MARGIN = 2.0**-30
_START_DIGITS = 40


class RaceEntry(NamedTuple):
    """One contestant: its id, the hash its uniform is drawn from, and its integer weight."""

    example_id: str
    draw: int  # 64-bit hash; u = (2 * (draw >> 12) + 1) / 2**53
    weight: int  # positive integer


def race_screen_keys(
    draws: npt.NDArray[np.uint64], weights: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Float screen of -ln(u) / w (platform-dependent in the last bits: screen only).

    Args:
        draws: 64-bit hashes the uniforms are drawn from.
        weights: positive weights (float64 images of the integer weights).

    Returns:
        The float keys, each within a relative `SCREEN_MARGIN` / 4 of the real key.
    """
    out: npt.NDArray[np.float64] = -np.log(uniform_open01(draws)) / weights
    return out


def _screen_key(entry: RaceEntry) -> float:
    """Float screen of one key (any libm: within the margin, not exact)."""
    mantissa = entry.draw >> (64 - UNIFORM_BITS)
    return -math.log((mantissa + 0.5) * 2.0**-UNIFORM_BITS) / entry.weight


def _neg_ln_uniform(draw: int, digits: int) -> Decimal:
    """-ln(u) correctly rounded to `digits` significant digits (decimal's ln is)."""
    odd = 2 * (draw >> (64 - UNIFORM_BITS)) + 1
    exact = Decimal(odd * 5 ** (UNIFORM_BITS + 1)).scaleb(
        -(UNIFORM_BITS + 1), Context(prec=80)
    )  # odd / 2**53 = odd * 5**53 / 10**53, at most 53 digits: exact at prec 80
    return -exact.ln(Context(prec=digits))


def _key_interval(draw: int, digits: int, other_weight: int) -> tuple[Fraction, Fraction]:
    """Bounds on -ln(u) * other_weight from a `digits`-digit correctly rounded logarithm."""
    value = Fraction(_neg_ln_uniform(draw, digits))
    error = value * Fraction(1, 10 ** (digits - 1))  # >= half an ulp, relative
    return (value - error) * other_weight, (value + error) * other_weight


def race_less(a: RaceEntry, b: RaceEntry) -> bool:
    """Exactly whether a's key -ln(u_a) / w_a precedes b's (ties, i.e. identical draws and
    weights, go to the smaller id).

    Args:
        a: first contestant.
        b: second contestant.

    Returns:
        True when a wins against b.
    """
    ua, ub = a.draw >> (64 - UNIFORM_BITS), b.draw >> (64 - UNIFORM_BITS)
    if ua == ub and a.weight == b.weight:
        return a.example_id < b.example_id
    key_a, key_b = _screen_key(a), _screen_key(b)
    if key_a < key_b * (1.0 - SCREEN_MARGIN):
        return True
    if key_b < key_a * (1.0 - SCREEN_MARGIN):
        return False
    # compare -ln(u_a) * w_b with -ln(u_b) * w_a; they differ, so some precision separates them
    digits = _START_DIGITS
    while True:
        lo_a, hi_a = _key_interval(a.draw, digits, b.weight)
        lo_b, hi_b = _key_interval(b.draw, digits, a.weight)
        if hi_a < lo_b:
            return True
        if hi_b < lo_a:
            return False
        digits *= 2


def race_winner(
    draws: npt.NDArray[np.uint64],
    weights: npt.NDArray[np.int64],
    ids: Sequence[str],
) -> int:
    """Position of the smallest key among contestants with positive weight.

    Args:
        draws: 64-bit hashes of the contestants.
        weights: their non-negative integer weights (0 = cannot win).
        ids: their ids (break exact ties).

    Returns:
        The winner's position, or -1 when no weight is positive.
    """
    eligible = np.flatnonzero(weights > 0)
    if not len(eligible):
        return -1
    keys = race_screen_keys(draws[eligible], weights[eligible].astype(np.float64))
    near = eligible[keys <= keys.min() * (1.0 + SCREEN_MARGIN)].tolist()
    if len(near) == 1:
        return int(near[0])
    best = near[0]
    for i in near[1:]:
        if race_less(_entry(ids, draws, weights, i), _entry(ids, draws, weights, best)):
            best = i
    return int(best)


def _entry(
    ids: Sequence[str], draws: npt.NDArray[np.uint64], weights: npt.NDArray[np.int64], i: int
) -> RaceEntry:
    return RaceEntry(ids[i], int(draws[i]), int(weights[i]))
