"""Quantized k-means whose deletions and insertions are exact (the ERASE clustering).

`QuantizedKMeans` clusters integer points (see `projection`) and records, per Lloyd
iteration, the quantized centers, the member counts and integer sums they were computed
from, and how many points changed cluster. With that record, removing (or adding) one
point is checked in O(T * k * p) integer operations: replay the recorded iterations with
the point's contribution removed (added); if no quantized center moves, and the stop rule
would stop at the same iteration, the clustering *is* the one a fresh fit would produce,
so the change is applied to the record in place. Otherwise the points are refitted.

All arithmetic that decides an assignment or a center is exact (integers or Python
fractions), and all randomness is keyed by (seed, purpose, example id), so a fit depends on
the set of points, not their order, and the in-place update is bit-for-bit a fresh fit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from langchain_erase.core.hashing import keyed_hash64, mix64
from langchain_erase.core.projection import COORD_BITS
from langchain_erase.core.race import RaceEntry, race_less, race_winner

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["ChangeOutcome", "QKMeansParams", "QuantizedKMeans", "RefitReason"]

IntArray = npt.NDArray[np.int64]
#: Largest number of projected dimensions (keeps every integer product below 2**63).
MAX_P = 64
_SPLIT = 14
#: Bound on |coordinate| (in units): projected unit vectors of D <= 8192 stay below it.
MAX_COORD = 1 << 27
#: Most points per fit: cluster sums (n * MAX_COORD) must stay exact in float64 bincounts.
MAX_POINTS = 1 << 26
#: Most clusters (demonstrations per prompt); far above any useful prompt.
MAX_K = 1024
_ASSIGN_CHUNK = 65536


class RefitReason(str, Enum):
    """Why a deletion or insertion needed a refit."""

    NONE = "none"
    INIT_SEED = "init_seed"  # the point won (or would win) a k-means++ seeding round
    CENTER_MOVED = "center_moved"  # a quantized center differs at some iteration
    STOP_RULE = "stop_rule"  # a fresh fit would stop at a different iteration


@dataclass(frozen=True)
class ChangeOutcome:
    """What a deletion or insertion did to the clustering."""

    refit: bool
    reason: RefitReason
    iteration: int | None = None  # Lloyd iteration (or seeding round) that forced the refit


@dataclass(frozen=True)
class QKMeansParams:
    """Clustering parameters; together with the point set they determine the fit."""

    k: int
    epsilon: float
    seed: int = 0
    gamma: float = 0.2
    max_iter: int = 30

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or not 1 <= self.k <= MAX_K:
            raise ValueError(f"k must be a positive integer up to {MAX_K}, got {self.k!r}")
        if not (isinstance(self.epsilon, (int, float)) and np.isfinite(self.epsilon)):
            raise ValueError(f"epsilon must be a finite number, got {self.epsilon!r}")
        if not 1 <= self.epsilon * (1 << COORD_BITS) <= MAX_COORD / 8:
            raise ValueError(
                f"epsilon must be in [2**-{COORD_BITS}, {MAX_COORD / 8 / (1 << COORD_BITS)}], "
                f"got {self.epsilon!r}"
            )
        if not isinstance(self.seed, int) or not -(2**63) <= self.seed < 2**63:
            raise ValueError(f"seed must be a 64-bit integer, got {self.seed!r}")
        if not (0.0 <= self.gamma <= 1.0):
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int):
            raise ValueError(f"max_iter must be an integer, got {self.max_iter!r}")
        if not 1 <= self.max_iter <= 1000:
            raise ValueError(f"max_iter must be in [1, 1000], got {self.max_iter!r}")

    @property
    def epsilon_units(self) -> int:
        """Lattice width in integer coordinate units."""
        return round(self.epsilon * (1 << COORD_BITS))

    @property
    def gamma_fraction(self) -> Fraction:
        """gamma as an exact fraction, so the balance threshold is exact."""
        return Fraction(self.gamma).limit_denominator(1000)


def exact_products(points: IntArray, centers: IntArray) -> IntArray:
    """points @ centers.T, exact, through float64 BLAS.

    Centers are split as hi * 2**_SPLIT + lo; each partial product sum stays below 2**53
    (|points| < 2**27, |hi|, |lo| <= 2**14, p <= 64), so BLAS computes both exactly in any
    order, and int64 recombines them.
    """
    hi = np.floor_divide(centers, 1 << _SPLIT)
    lo = centers - hi * (1 << _SPLIT)
    x = points.astype(np.float64)
    out: IntArray = (x @ np.ascontiguousarray(hi.T, dtype=np.float64)).astype(np.int64)
    out <<= _SPLIT
    out += (x @ np.ascontiguousarray(lo.T, dtype=np.float64)).astype(np.int64)
    return out


def assign(points: IntArray, centers: IntArray) -> npt.NDArray[np.intp]:
    """Index of the nearest center for each point; ties go to the lower center index.

    Exact int64 arithmetic: ||c||^2 - 2 x.c orders centers like ||x - c||^2.
    """
    sq = np.einsum("ij,ij->i", centers, centers)
    nearest: npt.NDArray[np.intp] = np.empty(points.shape[0], dtype=np.intp)
    for start in range(0, points.shape[0], _ASSIGN_CHUNK):
        block = points[start : start + _ASSIGN_CHUNK]
        scores = sq[None, :] - 2 * exact_products(block, centers)
        nearest[start : start + _ASSIGN_CHUNK] = np.argmin(scores, axis=1)
    return nearest


def _check_range(coords: npt.ArrayLike) -> None:
    """Every integer bound in this module assumes |coordinate| < MAX_COORD."""
    array = np.asarray(coords, dtype=np.int64)
    if array.size and int(np.abs(array).max()) >= MAX_COORD:
        raise ValueError(f"coordinates must be below {MAX_COORD} in absolute value")


def squared_distances(points: IntArray, center: IntArray) -> IntArray:
    """Exact squared distances of each point to one center."""
    diff = points - center[None, :]
    out: IntArray = np.einsum("ij,ij->i", diff, diff)
    return out


class QuantizedKMeans:
    """The clustering record plus the points it was fitted on, with exact delete/insert.

    Points live in rows of growable arrays; a deleted row is a tombstone that insertions
    reuse, so layout never matters: every decision is keyed by id or exact arithmetic.
    """

    def __init__(self, params: QKMeansParams, p: int) -> None:
        if not 1 <= p <= MAX_P:
            raise ValueError(f"p must be in [1, {MAX_P}]")
        self.params = params
        self.p = p
        phase_rng = np.random.default_rng(
            [params.seed & 0xFFFFFFFF, params.seed >> 32 & 0xFFFFFFFF, 7]
        )
        #: Random lattice phase theta (in units), drawn once from the seed.
        self.theta: IntArray = phase_rng.integers(0, params.epsilon_units, size=p, dtype=np.int64)
        self._round_salts = [keyed_hash64(params.seed, "init", str(r)) for r in range(params.k)]
        # point rows
        self._coords: IntArray = np.zeros((0, p), dtype=np.int64)
        self._hashes: npt.NDArray[np.uint64] = np.zeros(0, dtype=np.uint64)
        self._labels: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._ids: list[str | None] = []
        self._row: dict[str, int] = {}
        self._free: list[int] = []
        self._clear_record()

    # ----------------------------------------------------------------- record
    def _clear_record(self) -> None:
        self.seed_ids: list[str] = []
        self.centers: IntArray = np.zeros((1, 0, self.p), dtype=np.int64)  # (T+1, k_eff, p)
        self.counts: IntArray = np.zeros((0, 0), dtype=np.int64)  # (T, k_eff)
        self.sums: IntArray = np.zeros((0, 0, self.p), dtype=np.int64)  # (T, k_eff, p)
        self.changed: IntArray = np.zeros(0, dtype=np.int64)  # (T,)

    @property
    def n(self) -> int:
        return len(self._row)

    @property
    def n_clusters(self) -> int:
        return int(self.centers.shape[1])

    @property
    def iterations(self) -> int:
        return int(self.changed.shape[0])

    def __contains__(self, example_id: object) -> bool:
        return example_id in self._row

    def label(self, example_id: str) -> int:
        return int(self._labels[self._row[example_id]])

    def coords(self, example_id: str) -> IntArray:
        row: IntArray = self._coords[self._row[example_id]].copy()
        return row

    def final_centers(self) -> IntArray:
        last: IntArray = self.centers[-1]
        return last

    def alive(self) -> tuple[list[str], npt.NDArray[np.int64], IntArray]:
        """(ids, final clusters, coordinates) of every point, in row order."""
        rows = np.fromiter(self._row.values(), dtype=np.int64, count=len(self._row))
        return list(self._row), self._labels[rows], self._coords[rows]

    def members(self) -> Iterable[tuple[str, int]]:
        """(id, final cluster) for every point."""
        for example_id, row in self._row.items():
            yield example_id, int(self._labels[row])

    def record_digest(self) -> bytes:
        """sha256 of the canonical clustering record (independent of row layout)."""
        h = hashlib.sha256()
        pr = self.params
        h.update(
            f"qkm1|k={pr.k}|eps={pr.epsilon_units}|seed={pr.seed}|gamma={pr.gamma_fraction}"
            f"|T={pr.max_iter}|p={self.p}|n={self.n}".encode()
        )
        for sid in self.seed_ids:
            h.update(len(sid).to_bytes(8, "little") + sid.encode())
        for arr in (self.theta, self.centers, self.counts, self.sums, self.changed):
            h.update(np.ascontiguousarray(arr, dtype="<i8").tobytes())
        return h.digest()

    # -------------------------------------------------------------- center rule
    def _blended(self, counts: IntArray, n: int) -> npt.NDArray[np.bool_]:
        """Clusters below the balance threshold M = gamma * n / k_eff (exact)."""
        g = self.params.gamma_fraction
        k_eff = counts.shape[-1]
        return counts * (k_eff * g.denominator) < g.numerator * n  # type: ignore[no-any-return]

    def _quantized_centers(
        self, prev: IntArray, counts: IntArray, sums: IntArray, n: int, rows: Sequence[int]
    ) -> IntArray:
        """Quantized centers of clusters `rows`: exact mean, blended with the previous
        center under the balance threshold (Ginart et al.), snapped to eps*(Z^p + theta)."""
        eps = self.params.epsilon_units
        g = self.params.gamma_fraction
        k_eff = counts.shape[0]
        blended = self._blended(counts, n)
        out = np.empty((len(rows), self.p), dtype=np.int64)
        theta = [int(v) for v in self.theta]
        for pos, j in enumerate(rows):
            s = int(counts[j])
            if s > 0 and not blended[j]:
                a = sums[j] - self.theta * s  # mean - theta = a / s
                m = np.floor_divide(2 * a + eps * s, 2 * eps * s)
                out[pos] = eps * m + self.theta
                continue
            pv = [int(v) for v in prev[j]]
            if s == 0:  # empty cluster keeps (the quantization of) its previous center
                for d in range(self.p):
                    out[pos, d] = eps * ((2 * (pv[d] - theta[d]) + eps) // (2 * eps)) + theta[d]
                continue
            # (s/M) * mean + (1 - s/M) * prev, with M = g * n / k_eff, over denominator B
            big_b = g.numerator * n
            scale = k_eff * g.denominator
            sm = [int(v) for v in sums[j]]
            for d in range(self.p):
                num = (pv[d] - theta[d]) * big_b + (sm[d] - s * pv[d]) * scale
                out[pos, d] = eps * ((2 * num + eps * big_b) // (2 * eps * big_b)) + theta[d]
        return out

    # ----------------------------------------------------------------- seeding
    def _seed(self, coords: IntArray, hashes: npt.NDArray[np.uint64], ids: list[str]) -> list[int]:
        """k-means++ by exponential race: round r picks argmin E_r(i) / w_i, w_i = 1 then
        the squared distance to the nearest chosen seed; decided exactly (see `race`), ties
        by id. Removing a point that did not win leaves every other key, hence every
        choice, unchanged."""
        chosen: list[int] = []
        weights: IntArray = np.ones(len(ids), dtype=np.int64)
        for r in range(self.params.k):
            winner = race_winner(mix64(hashes, self._round_salts[r]), weights, ids)
            if winner < 0:
                break
            dist = squared_distances(coords, coords[winner])
            weights = dist if not chosen else np.minimum(weights, dist)
            chosen.append(winner)
        return chosen

    # --------------------------------------------------------------------- fit
    def fit(
        self,
        ids: Sequence[str],
        coords: IntArray,
        hashes: npt.NDArray[np.uint64],
    ) -> None:
        """Fit from scratch on the given points (replacing all current points)."""
        ids = list(ids)
        n = len(ids)
        if len(set(ids)) != n:
            raise ValueError("duplicate ids")
        if n > MAX_POINTS:
            raise ValueError(f"at most {MAX_POINTS} points per selector, got {n}")
        _check_range(coords)
        self._coords = np.array(coords, dtype=np.int64).reshape(n, self.p)
        self._hashes = np.array(hashes, dtype=np.uint64).reshape(n)
        self._ids = list(ids)
        self._row = dict(zip(ids, range(n), strict=True))
        self._free = []
        self._labels = np.zeros(n, dtype=np.int64)
        self._clear_record()
        if n == 0:
            return
        seeds = self._seed(self._coords, self._hashes, ids)
        self.seed_ids = [ids[s] for s in seeds]
        self._lloyd(self._coords, self._coords[seeds])

    def refit(self) -> None:
        """Fit again on the current points (compacting the rows)."""
        self.insert_many([], np.zeros((0, self.p), dtype=np.int64), np.zeros(0, dtype=np.uint64))

    def _lloyd(self, x: IntArray, seeds: IntArray) -> None:
        n, k_eff = x.shape[0], seeds.shape[0]
        all_rows = range(k_eff)
        centers = [seeds.copy()]
        labels = assign(x, seeds)
        counts_t: list[IntArray] = []
        sums_t: list[IntArray] = []
        changed_t: list[int] = []
        for _ in range(self.params.max_iter):
            counts = np.bincount(labels, minlength=k_eff).astype(np.int64)
            # float64 sums of integers below 2**53 are exact in any order
            sums = np.stack(
                [np.bincount(labels, weights=x[:, d], minlength=k_eff) for d in range(self.p)],
                axis=1,
            ).astype(np.int64)
            new_centers = self._quantized_centers(centers[-1], counts, sums, n, all_rows)
            new_labels = assign(x, new_centers)
            changed = int(np.count_nonzero(new_labels != labels))
            counts_t.append(counts)
            sums_t.append(sums)
            changed_t.append(changed)
            centers.append(new_centers)
            labels = new_labels
            if changed == 0:
                break
        self.centers = np.stack(centers)
        self.counts = np.stack(counts_t)
        self.sums = np.stack(sums_t)
        self.changed = np.array(changed_t, dtype=np.int64)
        self._labels = labels.astype(np.int64)

    # ---------------------------------------------------------- delete / insert
    def _trajectory(self, xv: IntArray) -> list[int]:
        """The point's cluster a_t for t = 0..T under the recorded centers (exact distances
        order centers exactly as `assign` does, ties to the lower index)."""
        diff = self.centers - xv
        nearest: list[int] = np.argmin(np.einsum("tkp,tkp->tk", diff, diff), axis=1).tolist()
        return nearest

    def _replay(self, xv: IntArray, path: list[int], sign: int) -> ChangeOutcome | None:
        """Replay every iteration with the point removed (sign=-1) or added (+1); return a
        refit outcome at the first iteration whose quantized centers would differ.

        Vectorized over iterations for the common case (the point's cluster is a plain mean
        before and after, and no cluster is under the balance threshold); iterations with
        blended clusters go through the general per-cluster rule.
        """
        iterations = self.iterations
        if iterations == 0:
            return None
        n_new = self.n + sign
        ts = np.arange(iterations)
        js = np.asarray(path[:-1])
        counts_new = self.counts.copy()
        counts_new[ts, js] += sign
        blended = self._blended(self.counts, self.n) | self._blended(counts_new, n_new)
        own_count = counts_new[ts, js]
        plain = (own_count > 0) & ~blended[ts, js]
        first_moved = iterations + 1
        if plain.any():
            eps, theta = self.params.epsilon_units, self.theta
            s = own_count[plain][:, None]
            a = self.sums[ts[plain], js[plain]] + sign * xv - theta * s
            moved_centers = eps * np.floor_divide(2 * a + eps * s, 2 * eps * s) + theta
            differs = (moved_centers != self.centers[1:][ts[plain], js[plain]]).any(axis=1)
            if differs.any():
                first_moved = int(ts[plain][differs][0]) + 1
        others = blended.copy()
        others[ts, js] = ~plain  # the point's own cluster only when it is not plain
        for t in np.flatnonzero(others.any(axis=1)).tolist():
            if t + 1 >= first_moved:
                break
            sums = self.sums[t].copy()
            sums[js[t]] += sign * xv
            rows = np.flatnonzero(others[t]).tolist()
            new = self._quantized_centers(self.centers[t], counts_new[t], sums, n_new, rows)
            if not np.array_equal(new, self.centers[t + 1][rows]):
                first_moved = t + 1
        if first_moved <= iterations:
            return ChangeOutcome(True, RefitReason.CENTER_MOVED, first_moved)
        return None

    def _moves(self, path: list[int]) -> IntArray:
        """1 where the point changes cluster at iteration t = 1..T."""
        steps = np.asarray(path)
        moves: IntArray = (steps[1:] != steps[:-1]).astype(np.int64)
        return moves

    def _apply(self, xv: IntArray, path: list[int], sign: int) -> None:
        ts = np.arange(self.iterations)
        js = np.asarray(path[:-1])
        self.counts[ts, js] += sign
        self.sums[ts, js] += sign * xv
        self.changed += sign * self._moves(path)

    def delete(self, example_id: str) -> ChangeOutcome:
        """Remove a point: in place when the check passes, else by refitting."""
        row = self._row[example_id]  # KeyError for unknown ids, before any change
        if example_id in self.seed_ids:
            seed_round = self.seed_ids.index(example_id)
            self._drop_row(example_id, row)
            self.refit()
            return ChangeOutcome(True, RefitReason.INIT_SEED, seed_round)
        xv = self._coords[row].copy()
        path = self._trajectory(xv)
        outcome = self._replay(xv, path, -1)
        if outcome is None:
            changed_after = self.changed - self._moves(path)
            zeros = np.flatnonzero(changed_after == 0)
            if len(zeros) and zeros[0] + 1 < self.iterations:
                outcome = ChangeOutcome(True, RefitReason.STOP_RULE, int(zeros[0]) + 1)
        self._drop_row(example_id, row)
        if outcome is not None:
            self.refit()
            return outcome
        self._apply(xv, path, -1)
        return ChangeOutcome(False, RefitReason.NONE)

    def _drop_row(self, example_id: str, row: int) -> None:
        del self._row[example_id]
        self._ids[row] = None
        self._coords[row] = 0
        self._hashes[row] = 0
        self._labels[row] = -1
        self._free.append(row)

    def _would_win_seeding(self, example_id: str, xv: IntArray, xh: int) -> int | None:
        """Seeding round the new point would win, if any (mirror of the exponential race)."""
        hx = np.array([xh], dtype=np.uint64)
        seeds = self.centers[0]
        for r, sid in enumerate(self.seed_ids):
            weight, seed_weight = 1, 1
            if r > 0:
                weight = int(squared_distances(seeds[:r], xv).min())
                seed_weight = int(squared_distances(seeds[:r], seeds[r]).min())
            if weight == 0:
                return None
            salt = self._round_salts[r]
            seed_hash = self._hashes[self._row[sid] : self._row[sid] + 1]
            new = RaceEntry(example_id, int(mix64(hx, salt)[0]), weight)
            if race_less(new, RaceEntry(sid, int(mix64(seed_hash, salt)[0]), seed_weight)):
                return r
        stopped_early = len(self.seed_ids) < self.params.k
        if stopped_early and (self.n == 0 or int(squared_distances(seeds, xv).min()) > 0):
            return len(self.seed_ids)
        return None

    def insert(self, example_id: str, coords: IntArray, id_hash: int) -> ChangeOutcome:
        """Add a point: in place when the check passes, else by refitting."""
        if example_id in self._row:
            raise ValueError(f"duplicate id {example_id!r}")
        xv = np.asarray(coords, dtype=np.int64).reshape(self.p)
        _check_range(xv)
        seed_round = self._would_win_seeding(example_id, xv, id_hash)
        outcome: ChangeOutcome | None = None
        if seed_round is not None:
            outcome = ChangeOutcome(True, RefitReason.INIT_SEED, seed_round)
        else:
            path = self._trajectory(xv)
            outcome = self._replay(xv, path, +1)
            last_moved = len(path) > 1 and path[-1] != path[-2]
            converged = self.iterations < self.params.max_iter
            if outcome is None and converged and last_moved:
                outcome = ChangeOutcome(True, RefitReason.STOP_RULE, self.iterations)
        row = self._add_row(example_id, xv, id_hash)
        if outcome is not None:
            self.refit()
            return outcome
        self._apply(xv, path, +1)
        self._labels[row] = path[-1]
        return ChangeOutcome(False, RefitReason.NONE)

    def insert_many(
        self, ids: Sequence[str], coords: IntArray, hashes: npt.NDArray[np.uint64]
    ) -> None:
        """Add many points with one refit (cheaper than checking each one)."""
        if not self._row.keys().isdisjoint(ids):  # repeats within `ids`: `fit` refuses them
            raise ValueError("duplicate ids")
        rows = list(self._row.values())
        self.fit(
            [*self._row, *ids],
            np.concatenate([self._coords[rows], np.asarray(coords, dtype=np.int64)]),
            np.concatenate([self._hashes[rows], np.asarray(hashes, dtype=np.uint64)]),
        )

    def _add_row(self, example_id: str, xv: IntArray, id_hash: int) -> int:
        if self._free:
            row = self._free.pop()
        else:
            row = len(self._ids)
            grow = max(16, row // 2)
            self._coords = np.concatenate([self._coords, np.zeros((grow, self.p), np.int64)])
            self._hashes = np.concatenate([self._hashes, np.zeros(grow, np.uint64)])
            self._labels = np.concatenate([self._labels, np.full(grow, -1, np.int64)])
            self._ids.append(None)
            self._free.extend(range(row + grow - 1, row, -1))
            self._ids.extend([None] * (grow - 1))
        self._coords[row] = xv
        self._hashes[row] = np.uint64(id_hash)
        self._ids[row] = example_id
        self._row[example_id] = row
        return row
