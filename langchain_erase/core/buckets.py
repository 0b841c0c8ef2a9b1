"""Per-cluster indexes that pick one demonstration per non-empty cluster.

Each pick is a deterministic function of the bucket's member set and the query, never of
insertion order or memory layout, so a selector after a deletion answers every query
exactly as a fresh fit without the deleted example would. Membership updates cost
O(log n) (sorted containers) or O(D) (the similarity block's swap-remove).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from sortedcontainers import SortedList

from langchain_erase.core.cells import CellIndex, VectorBlock, similarity_slack
from langchain_erase.core.hashing import id_hash64, keyed_hash64, mix64
from langchain_erase.core.threads import query_threads

__all__ = [
    "DEFAULT_CELLS",
    "DEFAULT_EXACT_BELOW",
    "DEFAULT_NPROBE",
    "BucketIndex",
    "SelectionMode",
    "similarity_slack",
]

SelectionMode = Literal["random", "centroid", "similar", "fixed"]

#: `similar` mode: keyed-sample cells per bucket, cells probed per query, and the bucket
#: size below which a bucket is scanned exactly instead (measured: docs/benchmarks.md).
DEFAULT_CELLS = 1024
DEFAULT_NPROBE = 64
DEFAULT_EXACT_BELOW = 16384


class BucketIndex:
    """Members of each final cluster, with the structures each selection mode needs."""

    def __init__(
        self,
        n_buckets: int,
        mode: SelectionMode,
        dimension: int,
        *,
        seed: int = 0,
        cells: int = DEFAULT_CELLS,
        nprobe: int = DEFAULT_NPROBE,
        exact_below: int = DEFAULT_EXACT_BELOW,
        threads: int | None = 1,
        screen: bool = True,
    ) -> None:
        """Empty buckets.

        Args:
            n_buckets: number of clusters.
            mode: selection mode.
            dimension: embedding dimension (`similar` mode stores the vectors).
            seed: keys the `similar` cell sample.
            cells: `similar` mode: keyed-sample cells per large bucket.
            nprobe: `similar` mode: cells scanned per query and bucket (recall vs time).
            exact_below: `similar` mode: buckets smaller than this are scanned exactly.
            threads: BLAS threads for one `similar` query (None leaves the process setting).
            screen: `similar` mode: scan cells through a float16 FAISS screen (half the bytes
                per query, 768 more bytes per example at D = 384; the same answers).
        """
        self.mode = mode
        self._dimension = dimension
        self._query_threads = threads
        self._seed = seed
        self._members: list[SortedList] = [SortedList() for _ in range(n_buckets)]
        # centroid mode: (distance to the center, id); fixed mode: (keyed hash, id).
        self._by_center: list[SortedList] = [SortedList() for _ in range(n_buckets)]
        salt = keyed_hash64(seed, "cells")
        self._blocks = (
            [
                CellIndex(
                    dimension,
                    cells=cells,
                    nprobe=nprobe,
                    exact_below=exact_below,
                    salt=salt,
                    screen=screen,
                )
                for _ in range(n_buckets)
            ]
            if mode == "similar"
            else []
        )

    def set_nprobe(self, nprobe: int) -> None:
        """Scan `nprobe` cells per query and bucket from now on (`similar` mode's recall knob).

        The cells themselves do not change, so answers stay a function of the member set,
        the query and `nprobe`.

        Args:
            nprobe: cells scanned per query and bucket; 1 <= nprobe <= cells.

        Raises:
            ValueError: `nprobe` outside that range.
        """
        for block in self._blocks:
            if not 1 <= nprobe <= block.n_cells:
                raise ValueError(f"need 1 <= nprobe <= cells ({block.n_cells}), got {nprobe}")
            block.nprobe = nprobe

    @classmethod
    def build(
        cls,
        n_buckets: int,
        mode: SelectionMode,
        dimension: int,
        ids: list[str],
        labels: npt.NDArray[np.int64],
        center_distances: npt.NDArray[np.int64],
        vectors: list[npt.NDArray[np.float32]] | npt.NDArray[np.float32],
        *,
        seed: int = 0,
        cells: int = DEFAULT_CELLS,
        nprobe: int = DEFAULT_NPROBE,
        exact_below: int = DEFAULT_EXACT_BELOW,
        threads: int | None = 1,
        screen: bool = True,
        id_hashes: npt.NDArray[np.uint64] | None = None,
    ) -> BucketIndex:
        """Bulk construction after a fit: one sort per bucket instead of n inserts.

        Args:
            n_buckets: number of clusters.
            mode: selection mode.
            dimension: embedding dimension.
            ids: member ids.
            labels: their clusters.
            center_distances: their exact squared distances to their cluster's center.
            vectors: their float32 unit vectors (rows of a matrix, or a list of rows).
            seed: see the constructor.
            cells: see the constructor.
            nprobe: see the constructor.
            exact_below: see the constructor.
            threads: see the constructor.
            screen: see the constructor.
            id_hashes: `id_hash64(seed, ids)` when the caller has them (saves recomputing).

        Returns:
            The index.
        """
        index = cls(
            n_buckets,
            mode,
            dimension,
            seed=seed,
            cells=cells,
            nprobe=nprobe,
            exact_below=exact_below,
            threads=threads,
            screen=screen,
        )
        if mode == "similar":
            matrix = np.asarray(vectors, dtype=np.float32).reshape(len(ids), dimension)
            hashes = id_hash64(index._seed, ids) if id_hashes is None else id_hashes
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
                index._blocks[b].build([ids[r] for r in rows], hashes[rows], matrix[rows])
        return index

    def _fixed_key(self, example_id: str) -> tuple[int, str]:
        """Fixed mode's rank of a member: a keyed hash of (seed, "fixed", id), ties by id."""
        return (keyed_hash64(self._seed, "fixed", example_id), example_id)

    def add(
        self, example_id: str, bucket: int, center_distance: int, vector: npt.NDArray[np.float32]
    ) -> None:
        self._members[bucket].add(example_id)
        if self.mode == "centroid":
            self._by_center[bucket].add((center_distance, example_id))
        elif self.mode == "fixed":
            self._by_center[bucket].add(self._fixed_key(example_id))
        elif self.mode == "similar":
            self._blocks[bucket].add(example_id, self._id_hash(example_id), vector)

    def remove(self, example_id: str, bucket: int, center_distance: int) -> None:
        self._members[bucket].remove(example_id)
        if self.mode == "centroid":
            self._by_center[bucket].remove((center_distance, example_id))
        elif self.mode == "fixed":
            self._by_center[bucket].remove(self._fixed_key(example_id))
        elif self.mode == "similar":
            self._blocks[bucket].remove(example_id, self._id_hash(example_id))

    def _id_hash(self, example_id: str) -> int:
        return int(id_hash64(self._seed, [example_id])[0])

    def sizes(self) -> list[int]:
        """Members per bucket.

        Returns:
            One count per bucket.
        """
        return [len(m) for m in self._members]

    def vector(self, example_id: str, bucket: int) -> npt.NDArray[np.float32]:
        """`similar` mode: the stored vector of a member (the index keeps the only copy).

        Args:
            example_id: a member id.
            bucket: its bucket.

        Returns:
            Its float32 row (a view; copy it before removing the member).
        """
        return self._blocks[bucket].vector(example_id)

    def vectors_of(self, example_ids: list[str]) -> npt.NDArray[np.float32]:
        """`similar` mode: the stored vectors of members, wherever they are (for a rebuild
        after a refit, or a snapshot, without a second copy kept elsewhere).

        Args:
            example_ids: member ids.

        Returns:
            A new float32 matrix, one row per id.
        """
        out = np.empty((len(example_ids), self._dimension), dtype=np.float32)
        for row, example_id in enumerate(example_ids):
            bucket = next(i for i, index in enumerate(self._blocks) if example_id in index)
            out[row] = self._blocks[bucket].vector(example_id)
        return out

    def stored(self) -> tuple[list[str], npt.NDArray[np.float32]]:
        """`similar` mode: every member's id and vector (for a rebuild after a refit, or a
        snapshot, without a second copy kept elsewhere).

        Returns:
            (ids in storage order, a new float32 (n, D) matrix of their vectors).
        """
        blocks = [block for index in self._blocks for block in index.member_blocks()]
        ids = [example_id for block in blocks for example_id in block.ids]
        rows = [block.rows for block in blocks]
        matrix = np.concatenate(rows) if rows else np.zeros((0, self._dimension), np.float32)
        return ids, matrix

    def screen_nbytes(self) -> int:
        """`similar` mode: bytes of the float16 FAISS screens (C++ memory).

        Returns:
            The byte count.
        """
        return sum(index.screen_nbytes() for index in self._blocks)

    def wipe(self) -> None:
        """Zero every stored vector (before the index is dropped: no bytes linger)."""
        for index in self._blocks:
            index.wipe()

    def vector_blocks(self) -> list[VectorBlock]:
        """`similar` mode: every block that stores vectors (to check erasure).

        Returns:
            The blocks.
        """
        return [block for index in self._blocks for block in index.blocks()]

    def pick(
        self, query_hash: int, query_vector: npt.NDArray[np.float32] | None
    ) -> list[tuple[int, str]]:
        """(bucket, example id) for every non-empty bucket, in bucket order.

        Args:
            query_hash: keyed hash of the query text (`random` mode).
            query_vector: the query's float32 unit vector (`similar` mode).

        Returns:
            One (bucket, example id) pair per non-empty bucket.
        """
        buckets = [b for b, members in enumerate(self._members) if members]
        if self.mode != "similar" or not buckets:
            return [(b, self._pick_one(b, query_hash)) for b in buckets]
        if query_vector is None:
            raise ValueError("similar mode needs a query vector")
        q64 = query_vector.astype(np.float64)
        # One query's matrix-vector products are too small to gain from BLAS threads and
        # lose badly to them on a busy machine (docs/benchmarks.md): one thread per query.
        with query_threads(self._query_threads):
            return [(b, self._blocks[b].best(query_vector, q64)) for b in buckets]

    def _pick_one(self, b: int, query_hash: int) -> str:
        members = self._members[b]
        if self.mode == "random":
            salt = np.array([b], dtype=np.uint64)
            return str(members[int(mix64(salt, query_hash)[0]) % len(members)])
        return str(self._by_center[b][0][1])
