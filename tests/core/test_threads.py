"""Per-query thread limit: BLAS pools run one thread inside, the process setting after."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info

from langchain_erase.core.buckets import BucketIndex
from langchain_erase.core.projection import normalize_rows
from langchain_erase.core.threads import query_threads


def blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_query_threads_limits_blas_inside_and_restores_after() -> None:
    before = blas_threads()
    assert before  # numpy's BLAS is loaded
    with query_threads(1):
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before
    with query_threads(None):
        assert blas_threads() == before


def test_a_blas_loaded_after_the_first_query_is_limited_too() -> None:
    # the controller was made once; faiss, imported later, brought a second BLAS that
    # kept its own threads inside the limit
    with query_threads(1):
        pass
    import faiss  # noqa: F401  (loads its own OpenBLAS and OpenMP)

    before = blas_threads()
    with query_threads(1):
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before


def test_similar_pick_is_the_same_with_and_without_the_limit() -> None:
    rng = np.random.default_rng(0)
    vectors = normalize_rows(rng.standard_normal((500, 32)))
    ids = [f"v{i}" for i in range(500)]
    labels = rng.integers(0, 3, 500).astype(np.int64)
    limited = BucketIndex.build(3, "similar", 32, ids, labels, labels, vectors)
    free = BucketIndex.build(3, "similar", 32, ids, labels, labels, vectors, threads=None)
    for query in normalize_rows(rng.standard_normal((20, 32))):
        assert limited.pick(0, query) == free.pick(0, query)
