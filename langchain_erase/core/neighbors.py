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

from fractions import Fraction

import numpy as np
import numpy.typing as npt

from langchain_erase.core.cells import VectorBlock, exact_dot, similarity_slack

__all__ = ["NeighborIndex", "ScoredId"]

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
        size = len(self._block)
        if k <= 0 or size == 0:
            return []
        q32 = np.asarray(query, dtype=np.float32)
        q64 = q32.astype(np.float64)
        rows = self._block.rows
        if k >= size:
            near = np.arange(size)
        else:
            # Any member of the exact top k scores (in float32) at least the k-th largest
            # float32 score minus the slack; see buckets.similarity_slack for the bound.
            scores = rows @ q32
            kth = np.partition(scores, size - k)[size - k]
            near = np.flatnonzero(scores >= kth - similarity_slack(self.dimension))
        exact = sorted((-exact_dot(rows[r], q64), self._block.ids[r]) for r in near.tolist())
        return [(example_id, -negated) for negated, example_id in exact[:k]]

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
        candidates = self.knn(query, fetch_k)
        if k <= 0 or not candidates:
            return []
        weight = Fraction(lambda_mult)
        relevance = {example_id: weight * Fraction(score) for example_id, score in candidates}
        redundancy: dict[str, float] = {}  # highest similarity to anything already chosen
        chosen: list[ScoredId] = [candidates[0]]  # the most similar, as LangChain starts
        remaining = dict(candidates[1:])
        while remaining and len(chosen) < k:
            last = self._block.matrix[self._block.row[chosen[-1][0]]].astype(np.float64)
            for example_id in remaining:
                similarity = exact_dot(self._block.matrix[self._block.row[example_id]], last)
                redundancy[example_id] = max(redundancy.get(example_id, similarity), similarity)
            best = min(  # highest marginal relevance, ties by smallest id
                remaining,
                key=lambda i: ((1 - weight) * Fraction(redundancy[i]) - relevance[i], i),
            )
            chosen.append((best, remaining.pop(best)))
        return chosen
