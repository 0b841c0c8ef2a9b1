"""Exact k-nearest-neighbour and maximal-marginal-relevance selection over a member set.

The answers are functions of the member set and the query only: float32 scores (BLAS,
whose rounding depends on batch shape and row order) only screen candidates, every member
that could win is rescored with a correctly rounded dot product, and ties go to the
smallest id. So an index after any sequence of insertions and deletions answers every
query exactly as one built from the final set, which is what makes `knn` and `mmr`
selection exactly unlearnable.

Scores are the dot products of the stored (L2-normalized) vectors, i.e. their cosine
similarity, as LangChain's similarity selectors use. MMR follows LangChain's
`maximal_marginal_relevance`: take the `fetch_k` members most similar to the query, start
with the most similar, then repeatedly add the candidate maximizing
``lambda_mult * sim(query, c) - (1 - lambda_mult) * max(sim(c, s) for s already chosen)``,
here evaluated in exact rational arithmetic on the correctly rounded similarities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from langchain_erase.core.cells import CellIndex, VectorBlock, exact_dot, top_of
from langchain_erase.core.hashing import id_hash64, keyed_hash64

__all__ = ["CellNeighbors", "CellSearch", "NeighborIndex", "ScoredId", "mmr_order"]

#: (example id, correctly rounded cosine similarity to the query)
ScoredId = tuple[str, float]


class NeighborIndex:
    """Every member's unit vector in contiguous float32 rows, answering exact kNN and MMR.

    Insertion is amortized O(D), deletion O(D) (the last row moves into the hole), and a
    query is one float32 matrix-vector product plus exact rescoring of the near-ties.
    """

    def __init__(self, dimension: int) -> None:
        """An empty index for vectors of `dimension` components.

        Args:
            dimension: Length of every vector that will be added.
        """
        self.dimension = dimension
        self._block = VectorBlock(dimension)

    @classmethod
    def build(
        cls, dimension: int, ids: list[str], vectors: list[npt.NDArray[np.float32]]
    ) -> NeighborIndex:
        """Bulk construction (one copy instead of n appends).

        Args:
            dimension: Vector length.
            ids: Member ids, distinct.
            vectors: One float32 unit vector per id.

        Returns:
            The index holding exactly these members.
        """
        index = cls(dimension)
        rows = np.array(vectors, dtype=np.float32).reshape(len(ids), dimension)
        index._block = VectorBlock.of(ids, rows)
        return index

    @classmethod
    def over(cls, block: VectorBlock) -> NeighborIndex:
        """An index searching `block` in place (shared, not copied: whoever owns the block
        adds and removes its rows, and the index answers for its current rows).

        Args:
            block: The rows to search.

        Returns:
            The index.
        """
        index = cls(block.matrix.shape[1])
        index._block = block
        return index

    def __len__(self) -> int:
        """Number of members."""
        return len(self._block)

    def add(self, example_id: str, vector: npt.NDArray[np.float32]) -> None:
        """Insert one member (its id must not be present).

        Args:
            example_id: The member's id.
            vector: Its float32 unit vector of the index's dimension.
        """
        self._block.add(example_id, vector)

    def remove(self, example_id: str) -> None:
        """Delete one member and zero the row that held its bytes.

        Args:
            example_id: An id that is present.
        """
        self._block.remove(example_id)

    def knn(self, query: npt.NDArray[np.float32], k: int) -> list[ScoredId]:
        """The `k` members most similar to `query`, best first; ties by smallest id.

        Args:
            query: Float32 unit vector of the index's dimension.
            k: How many to return (fewer when the index holds fewer).

        Returns:
            (id, exact similarity) pairs in decreasing similarity, then increasing id.
        """
        q32 = np.asarray(query, dtype=np.float32)
        return top_of([self._block], q32, q32.astype(np.float64), k)

    def mmr(
        self, query: npt.NDArray[np.float32], k: int, fetch_k: int, lambda_mult: float
    ) -> list[ScoredId]:
        """Maximal marginal relevance among the `fetch_k` nearest members, in pick order.

        Args:
            query: Float32 unit vector of the index's dimension.
            k: How many to return (at most `fetch_k` and the number of members).
            fetch_k: How many nearest members are candidates.
            lambda_mult: Weight of similarity to the query (1) versus diversity (0), in [0, 1].

        Returns:
            (id, exact similarity to the query) pairs in the order MMR picked them.
        """
        return mmr_order(self.knn(query, fetch_k), self._block.vector, k, lambda_mult)


def mmr_order(
    candidates: list[ScoredId],
    vector: Callable[[str], npt.NDArray[np.float32]],
    k: int,
    lambda_mult: float,
) -> list[ScoredId]:
    """LangChain's maximal marginal relevance over ranked candidates, decided exactly.

    Args:
        candidates: (id, exact similarity to the query) pairs, best first.
        vector: The stored float32 unit vector of a candidate.
        k: How many to pick.
        lambda_mult: Weight of similarity to the query (1) versus diversity (0), in [0, 1].

    Returns:
        (id, exact similarity to the query) pairs in the order MMR picked them.
    """
    if k <= 0 or not candidates:
        return []
    weight = Fraction(lambda_mult)
    relevance = {example_id: weight * Fraction(score) for example_id, score in candidates}
    redundancy: dict[str, float] = {}  # highest similarity to anything already chosen
    chosen: list[ScoredId] = [candidates[0]]  # the most similar, as LangChain starts
    remaining = dict(candidates[1:])
    while remaining and len(chosen) < k:
        last = vector(chosen[-1][0]).astype(np.float64)
        for example_id in remaining:
            similarity = exact_dot(vector(example_id), last)
            redundancy[example_id] = max(redundancy.get(example_id, similarity), similarity)
        best = min(  # highest marginal relevance, ties by smallest id
            remaining,
            key=lambda i: ((1 - weight) * Fraction(redundancy[i]) - relevance[i], i),
        )
        chosen.append((best, remaining.pop(best)))
    return chosen


@dataclass(frozen=True)
class CellSearch:
    """Sublinear kNN/MMR settings: keyed-sample cells above a size threshold.

    Below `exact_below` members every query scans all of them (exact). From `exact_below`
    on, members are grouped into `cells` cells around keyed-sample centers (`core.cells`)
    and a query reads the `nprobe` cells nearest to it: `nprobe` is the recall knob (more
    cells read, higher recall, slower query). Answers are a function of the member set, the
    query and these settings, so deletions stay exact either way.

    Attributes:
        cells: Keyed-sample cells (cell centers).
        nprobe: Cells read per query (1 <= nprobe <= cells).
        exact_below: Member count below which search is an exact scan (> cells).
        screen: Read cells through the float16 FAISS screen (same answers, about half the
            query time, 2 D more bytes per member).
    """

    cells: int = 4096
    nprobe: int = 32
    exact_below: int = 16384
    screen: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.nprobe <= self.cells < self.exact_below:
            raise ValueError("need 1 <= nprobe <= cells < exact_below")

    def identity(self) -> dict[str, int]:
        """Returns:
        The settings that can change an answer (what a state digest must include)."""
        return {"cells": self.cells, "nprobe": self.nprobe, "exact_below": self.exact_below}


class CellNeighbors:
    """Exact-below-a-threshold, keyed-sample-cells-above kNN and MMR over a member set.

    Holds the only copy of each member's vector (in its cell's block), with the
    `VectorBlock`-like surface `ERASEIndex` stores vectors through (`extend`, `remove`,
    `vector`, `ids`, `rows`). Every answer is a function of the member set, the query and
    the `CellSearch` settings.
    """

    def __init__(self, dimension: int, search: CellSearch, seed: int) -> None:
        """An empty index.

        Args:
            dimension: Vector length.
            search: Cell settings.
            seed: Keys the cell-center sample.
        """
        self._seed = seed
        self._cells = CellIndex(
            dimension,
            cells=search.cells,
            nprobe=search.nprobe,
            exact_below=search.exact_below,
            salt=keyed_hash64(seed, "vector-cells"),
            screen=search.screen,
        )

    def __len__(self) -> int:
        return len(self._cells)

    @property
    def ids(self) -> list[str]:
        """Member ids in storage order (matching `rows`)."""
        return [i for block in self._cells.member_blocks() for i in block.ids]

    @property
    def rows(self) -> npt.NDArray[np.float32]:
        """A copy of the member vectors in storage order, float32 (n, D)."""
        blocks = [block.rows for block in self._cells.member_blocks()]
        return (
            np.concatenate(blocks) if blocks else np.zeros((0, self._cells.dimension), np.float32)
        )

    def extend(self, ids: list[str], rows: npt.NDArray[np.float32]) -> None:
        """Add members (bulk build when empty).

        Args:
            ids: New ids.
            rows: Their float32 unit vectors (len(ids), D).
        """
        hashes = id_hash64(self._seed, ids)
        if not len(self._cells):
            self._cells.build(list(ids), hashes, np.asarray(rows, dtype=np.float32))
            return
        for example_id, id_hash, row in zip(ids, hashes.tolist(), rows, strict=True):
            self._cells.add(example_id, id_hash, row)

    def remove(self, example_id: str) -> None:
        """Remove a member, zeroing its vector's bytes.

        Args:
            example_id: A present id.
        """
        self._cells.remove(example_id, int(id_hash64(self._seed, [example_id])[0]))

    def vector(self, example_id: str) -> npt.NDArray[np.float32]:
        """Args:
            example_id: A present id.

        Returns:
            Its stored float32 vector (a view)."""
        return self._cells.vector(example_id)

    def blocks(self) -> list[VectorBlock]:
        """Returns:
        Every block holding vectors (members, and the cell centers in cell mode)."""
        return self._cells.blocks()

    def wipe(self) -> None:
        """Zero every vector and code held (before the index is dropped)."""
        self._cells.wipe()

    def knn(self, query: npt.NDArray[np.float32], k: int) -> list[ScoredId]:
        """The `k` most similar members (exact below `exact_below`, else in the probed cells).

        Args:
            query: Float32 unit vector.
            k: How many.

        Returns:
            (id, exact similarity) pairs, best first, ties by smallest id.
        """
        q32 = np.asarray(query, dtype=np.float32)
        return self._cells.top(q32, q32.astype(np.float64), k)

    def mmr(
        self, query: npt.NDArray[np.float32], k: int, fetch_k: int, lambda_mult: float
    ) -> list[ScoredId]:
        """Maximal marginal relevance among the `fetch_k` members `knn` returns.

        Args:
            query: Float32 unit vector.
            k: How many to pick.
            fetch_k: How many candidates.
            lambda_mult: Weight of similarity (1) versus diversity (0).

        Returns:
            (id, exact similarity to the query) pairs in pick order.
        """
        return mmr_order(self.knn(query, fetch_k), self._cells.vector, k, lambda_mult)
