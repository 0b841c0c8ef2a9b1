"""Per-cluster indexes that pick one demonstration per non-empty cluster.

Each pick is a deterministic function of the bucket's member set and the query, never of
insertion order or memory layout, so a selector after a deletion answers every query
exactly as a fresh fit without the deleted example would. Membership updates cost
O(log n) (sorted containers) or O(D) (the similarity block's swap-remove).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt
from sortedcontainers import SortedList

from langchain_erase.core.hashing import keyed_hash64, mix64

__all__ = ["BucketIndex", "SelectionMode", "similarity_slack"]

SelectionMode = Literal["random", "centroid", "similar", "fixed"]

#: Unit-roundoff of float32. A float32 dot product of two unit vectors of dimension D is
#: within D * 2**-24 of the exact value in any summation order (Higham's bound, with
#: sum |a_i b_i| <= 1), so every member whose float32 score is within twice that of the
#: best is rescored exactly: the exact winner is always among them.
FLOAT32_UNIT_ROUNDOFF = 2.0**-24


def similarity_slack(dimension: int) -> float:
    return 2.0 * (dimension + 1) * FLOAT32_UNIT_ROUNDOFF


def exact_dot(a: npt.NDArray[np.float32], b: npt.NDArray[np.float64]) -> float:
    """Correctly rounded dot product (math.fsum of exact float64 products of float32s)."""
    return math.fsum((a.astype(np.float64) * b).tolist())


class _VectorBlock:
    """Contiguous float32 rows of one bucket for fast similarity scoring."""

    def __init__(self, dimension: int) -> None:
        self.matrix = np.zeros((0, dimension), dtype=np.float32)
        self.ids: list[str] = []
        self.row: dict[str, int] = {}

    def add(self, example_id: str, vector: npt.NDArray[np.float32]) -> None:
        size = len(self.ids)
        if size == self.matrix.shape[0]:
            grown = np.zeros((max(8, 2 * size), self.matrix.shape[1]), dtype=np.float32)
            grown[:size] = self.matrix
            self.matrix = grown
        self.matrix[size] = vector
        self.ids.append(example_id)
        self.row[example_id] = size

    def remove(self, example_id: str) -> None:
        row = self.row.pop(example_id)
        last = len(self.ids) - 1
        if row != last:
            moved = self.ids[last]
            self.matrix[row] = self.matrix[last]
            self.ids[row] = moved
            self.row[moved] = row
        self.matrix[last] = 0.0  # the deleted vector's bytes do not linger here
        self.ids.pop()

    def best(self, query32: npt.NDArray[np.float32], query64: npt.NDArray[np.float64]) -> str:
        """Member with the highest exact cosine to the query; ties by smallest id."""
        size = len(self.ids)
        scores = self.matrix[:size] @ query32
        near = np.flatnonzero(scores >= scores.max() - similarity_slack(self.matrix.shape[1]))
        exact = [(-exact_dot(self.matrix[r], query64), self.ids[r]) for r in near.tolist()]
        return min(exact)[1]


class BucketIndex:
    """Members of each final cluster, with the structures each selection mode needs."""

    def __init__(
        self, n_buckets: int, mode: SelectionMode, dimension: int, *, seed: int = 0
    ) -> None:
        self.mode = mode
        self.seed = seed
        self._members: list[SortedList] = [SortedList() for _ in range(n_buckets)]
        # centroid mode: (distance to the center, id); fixed mode: (keyed hash, id).
        self._by_center: list[SortedList] = [SortedList() for _ in range(n_buckets)]
        self._blocks = (
            [_VectorBlock(dimension) for _ in range(n_buckets)] if mode == "similar" else []
        )

    @classmethod
    def build(
        cls,
        n_buckets: int,
        mode: SelectionMode,
        dimension: int,
        ids: list[str],
        labels: npt.NDArray[np.int64],
        center_distances: npt.NDArray[np.int64],
        vectors: list[npt.NDArray[np.float32]],
        *,
        seed: int = 0,
    ) -> BucketIndex:
        """Bulk construction after a fit: one sort per bucket instead of n inserts."""
        index = cls(n_buckets, mode, dimension, seed=seed)
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(n_buckets + 1))
        for b in range(n_buckets):
            rows = order[bounds[b] : bounds[b + 1]].tolist()
            index._members[b] = SortedList(ids[r] for r in rows)
            if mode == "centroid":
                index._by_center[b] = SortedList((int(center_distances[r]), ids[r]) for r in rows)
            elif mode == "fixed":
                index._by_center[b] = SortedList(index._fixed_key(ids[r]) for r in rows)
            elif mode == "similar":
                block = index._blocks[b]
                block.matrix = np.array([vectors[r] for r in rows], dtype=np.float32).reshape(
                    len(rows), dimension
                )
                block.ids = [ids[r] for r in rows]
                block.row = {example_id: i for i, example_id in enumerate(block.ids)}
        return index

    def _fixed_key(self, example_id: str) -> tuple[int, str]:
        """Fixed mode's rank of a member: a keyed hash of (seed, "fixed", id), ties by id."""
        return (keyed_hash64(self.seed, "fixed", example_id), example_id)

    def add(
        self, example_id: str, bucket: int, center_distance: int, vector: npt.NDArray[np.float32]
    ) -> None:
        self._members[bucket].add(example_id)
        if self.mode == "centroid":
            self._by_center[bucket].add((center_distance, example_id))
        elif self.mode == "fixed":
            self._by_center[bucket].add(self._fixed_key(example_id))
        elif self.mode == "similar":
            self._blocks[bucket].add(example_id, vector)

    def remove(self, example_id: str, bucket: int, center_distance: int) -> None:
        self._members[bucket].remove(example_id)
        if self.mode == "centroid":
            self._by_center[bucket].remove((center_distance, example_id))
        elif self.mode == "fixed":
            self._by_center[bucket].remove(self._fixed_key(example_id))
        elif self.mode == "similar":
            self._blocks[bucket].remove(example_id)

    def sizes(self) -> list[int]:
        return [len(m) for m in self._members]

    def pick(
        self, query_hash: int, query_vector: npt.NDArray[np.float32] | None
    ) -> list[tuple[int, str]]:
        """(bucket, example id) for every non-empty bucket, in bucket order."""
        picks: list[tuple[int, str]] = []
        q64 = None if query_vector is None else query_vector.astype(np.float64)
        for b, members in enumerate(self._members):
            if not members:
                continue
            if self.mode == "random":
                salt = np.array([b], dtype=np.uint64)
                rank = int(mix64(salt, query_hash)[0]) % len(members)
                picks.append((b, str(members[rank])))
            elif self.mode in ("centroid", "fixed"):
                picks.append((b, str(self._by_center[b][0][1])))
            else:
                if query_vector is None or q64 is None:
                    raise ValueError("similar mode needs a query vector")
                picks.append((b, self._blocks[b].best(query_vector, q64)))
        return picks
