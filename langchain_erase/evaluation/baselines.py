"""Demonstration selectors from the literature that ERASE is compared against.

Auto-CoT (Zhang et al. 2023, "ACoT") clusters the pool with ordinary k-means on the full
embeddings and shows, to every query, the member nearest each cluster center. It is the
unquantized counterpart of ERASE's `centroid` mode: same idea, no projection to p dimensions,
no lattice, so nothing about it is exactly unlearnable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

__all__ = ["acot_demonstrations"]


def acot_demonstrations(
    pool: Sequence[dict[str, str]],
    k: int,
    embeddings: Embeddings,
    seed: int,
    *,
    input_key: str = "input",
    iterations: int = 20,
) -> list[dict[str, str]]:
    """Auto-CoT's demonstrations: k-means (faiss, seeded) on the pool's full-dimensional
    embeddings, then the member nearest each non-empty center, in center order.

    Args:
        pool: demonstration candidates (dicts with `id` and `input_key`).
        k: number of clusters, capped at the pool size.
        embeddings: the embedding model; documents are embedded once.
        seed: seeds faiss's k-means initialisation.
        input_key: the field that is embedded.
        iterations: Lloyd iterations.

    Returns:
        At most k pool members, the same for every query (ties to a center broken by id).
    """
    import faiss

    if k < 1 or not pool:
        return []
    x = np.asarray(embeddings.embed_documents([d[input_key] for d in pool]), dtype=np.float64)
    clusters = min(k, len(pool))
    kmeans = faiss.Kmeans(
        x.shape[1], clusters, niter=iterations, seed=seed, min_points_per_centroid=1
    )
    kmeans.train(np.ascontiguousarray(x, dtype=np.float32))
    centers = np.asarray(kmeans.centroids, dtype=np.float64)
    # Assign and rank in float64 so the choice does not depend on float32 rounding.
    distances = np.stack([((x - c) ** 2).sum(axis=1) for c in centers], axis=1)
    labels = distances.argmin(axis=1)
    picks = []
    for c in range(clusters):
        members = np.flatnonzero(labels == c)
        if len(members):
            best = min(members.tolist(), key=lambda i: (distances[i, c], pool[i]["id"]))
            picks.append(pool[best])
    return picks
