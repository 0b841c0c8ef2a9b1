"""Similarity search over an `ERASEIndex` ("knn" mode) for `ERASEVectorStore`, and the
checks of search and write arguments.

Unfiltered searches read the index's own neighbour structure (exact scan, or keyed-sample
cells above the size threshold); filtered ones are exact over the matching documents. MMR
then picks among the candidates with `core.neighbors.mmr_order`. Every answer is a function
of the stored rows, the query and the parameters (exact scores, ties by smaller id).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from langchain_erase.core.cells import VectorBlock, top_of
from langchain_erase.core.index import ERASEIndex
from langchain_erase.core.neighbors import ScoredId, mmr_order
from langchain_erase.errors import EmbeddingError, InvalidParameterError
from langchain_erase.vectorstore.documents import MetadataFilter

__all__ = ["check_count", "check_lambda", "nearest", "no_kwargs"]


def nearest(
    index: ERASEIndex,
    vector: npt.NDArray[np.float32],
    fetch: int,
    matcher: MetadataFilter | None,
    mmr: tuple[int, float] | None = None,
) -> list[ScoredId]:
    """The `fetch` nearest documents, then MMR's picks among them if asked.

    Args:
        index: The store's index (the caller holds its lock, caught up).
        vector: The float32 unit query.
        fetch: How many nearest documents (the candidates, for MMR).
        matcher: Keep only the documents it matches (exact over them), or None.
        mmr: (k, lambda_mult) to pick by maximal marginal relevance, or None.

    Returns:
        (id, exact cosine similarity) pairs, best first (MMR: in pick order).
    """
    if index.dimension is not None and vector.shape[0] != index.dimension:
        raise EmbeddingError(
            f"query dimension {vector.shape[0]} differs from the store's {index.dimension}"
        )
    hits: list[ScoredId]
    vector_of: Callable[[str], npt.NDArray[np.float32]] = index.vector
    if matcher is None:
        neighbors = index.neighbors
        hits = [] if neighbors is None else neighbors.knn(vector, fetch)
    else:
        ids = matcher.matching((i, index.text(i)) for i in index.ids())
        if not ids:
            return []
        block = VectorBlock.of(ids, np.stack([index.vector(i) for i in ids]))
        hits = top_of([block], vector, vector.astype(np.float64), fetch)
        vector_of = block.vector
    return hits if mmr is None else mmr_order(hits, vector_of, mmr[0], mmr[1])


def no_kwargs(kwargs: dict[str, Any]) -> None:
    """Refuse keyword arguments a method does not read.

    Args:
        kwargs: The extra keyword arguments.
    """
    if kwargs:
        raise InvalidParameterError(
            f"unexpected keyword arguments {sorted(kwargs)} (ERASEVectorStore reads none)"
        )


def check_count(value: object, name: str) -> int:
    """Args:
        value: A count argument (k, fetch_k, batch_size).
        name: Its name, for the message.

    Returns:
        The count, if a positive integer (InvalidParameterError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameterError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_lambda(value: object) -> float:
    """Args:
        value: A `lambda_mult` argument.

    Returns:
        It as a float, if a number in [0, 1] (InvalidParameterError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidParameterError(f"lambda_mult must be a number in [0, 1], got {value!r}")
    return float(value)
