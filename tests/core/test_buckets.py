"""Bucket indexes: each pick is a function of the member set and the query only."""

from __future__ import annotations

import numpy as np
import pytest

from langchain_erase.core.buckets import BucketIndex, similarity_slack
from langchain_erase.core.hashing import keyed_hash64
from langchain_erase.core.projection import normalize_rows

DIM = 16


def members(n: int, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    ids = [f"m{i:03d}" for i in range(n)]
    labels = rng.integers(0, 3, n).astype(np.int64)
    distances = rng.integers(0, 50, n).astype(np.int64)
    vectors = list(normalize_rows(rng.standard_normal((n, DIM))))
    return ids, labels, distances, vectors


@pytest.mark.parametrize("mode", ["random", "centroid", "similar", "fixed"])
def test_bulk_build_equals_incremental_adds_in_any_order(mode: str) -> None:
    ids, labels, distances, vectors = members(40)
    built = BucketIndex.build(3, mode, DIM, ids, labels, distances, vectors)  # type: ignore[arg-type]
    incremental = BucketIndex(3, mode, DIM)  # type: ignore[arg-type]
    for i in reversed(range(40)):
        incremental.add(ids[i], int(labels[i]), int(distances[i]), vectors[i])
    query = normalize_rows(np.ones((1, DIM)))[0]
    for query_hash in (1, 99, 2**63):
        assert built.pick(query_hash, query) == incremental.pick(query_hash, query)
    assert built.sizes() == incremental.sizes() == np.bincount(labels, minlength=3).tolist()


def test_centroid_pick_is_nearest_to_center_with_id_ties() -> None:
    index = BucketIndex(1, "centroid", DIM)
    zero = np.zeros(DIM, dtype=np.float32)
    for example_id, distance in (("b", 5), ("a", 5), ("c", 1), ("d", 9)):
        index.add(example_id, 0, distance, zero)
    assert index.pick(0, None) == [(0, "c")]
    index.remove("c", 0, 1)
    assert index.pick(0, None) == [(0, "a")]


def test_fixed_pick_is_the_smallest_keyed_hash_for_every_query() -> None:
    ids, labels, distances, vectors = members(60)
    for seed in (0, 1, 2):
        index = BucketIndex.build(3, "fixed", DIM, ids, labels, distances, vectors, seed=seed)
        expected = [
            (
                b,
                min(
                    (i for i, lab in zip(ids, labels, strict=True) if lab == b),
                    key=lambda i: keyed_hash64(seed, "fixed", i),
                ),
            )
            for b in range(3)
        ]
        assert all(index.pick(h, None) == expected for h in (1, 99, 2**63))
        victim = expected[0][1]
        index.remove(victim, 0, 0)
        assert index.pick(5, None)[0][1] != victim
    picks = {
        tuple(
            BucketIndex.build(3, "fixed", DIM, ids, labels, distances, vectors, seed=s).pick(
                0, None
            )
        )
        for s in range(4)
    }
    assert len(picks) > 1  # the draw depends on the seed


def test_similar_pick_is_exact_and_breaks_ties_by_id() -> None:
    index = BucketIndex(1, "similar", DIM)
    base = normalize_rows(np.arange(1, DIM + 1, dtype=np.float64)[None, :])[0]
    for example_id in ("z", "y", "x"):  # identical vectors: the smallest id wins
        index.add(example_id, 0, 0, base)
    other = normalize_rows(np.ones((1, DIM)))[0]
    index.add("a", 0, 0, other)
    assert index.pick(0, base) == [(0, "x")]
    assert index.pick(0, other) == [(0, "a")]
    index.remove("x", 0, 0)
    assert index.pick(0, base) == [(0, "y")]


def test_removal_zeroes_the_vector_slot_and_random_rank_stays_in_range() -> None:
    index = BucketIndex(2, "similar", DIM)
    ids, _, _, vectors = members(6, seed=2)
    for i, example_id in enumerate(ids):
        index.add(example_id, i % 2, 0, vectors[i])
    [block] = index._blocks[0].blocks()
    last_row_before = len(block.ids) - 1
    index.remove(ids[0], 0, 0)
    assert not block.matrix[last_row_before].any()
    random_index = BucketIndex(2, "random", DIM)
    for i, example_id in enumerate(ids):
        random_index.add(example_id, i % 2, 0, vectors[i])
    for query_hash in range(50):
        picks = random_index.pick(query_hash, None)
        assert [b for b, _ in picks] == [0, 1]
        assert all(p in ids[b::2] for b, p in picks)


def test_slack_covers_float32_error() -> None:
    assert similarity_slack(384) == pytest.approx(2 * 385 * 2.0**-24)


def test_set_nprobe_answers_as_a_build_with_that_nprobe() -> None:
    ids, labels, distances, vectors = members(400, seed=3)

    def built(nprobe: int, exact_below: int = 20) -> BucketIndex:
        return BucketIndex.build(
            3, "similar", DIM, ids, labels, distances, vectors,
            cells=8, nprobe=nprobe, exact_below=exact_below,
        )  # fmt: skip

    queries = list(normalize_rows(np.random.default_rng(4).standard_normal((40, DIM))))
    exact = [built(8, exact_below=10**6).pick(0, q) for q in queries]
    tuned = built(1)
    assert [tuned.pick(0, q) for q in queries] != exact  # one cell of eight misses some
    for nprobe in (8, 2):
        tuned.set_nprobe(nprobe)
        assert [tuned.pick(0, q) for q in queries] == [built(nprobe).pick(0, q) for q in queries]
    tuned.set_nprobe(8)  # every cell probed: the exact answer
    assert [tuned.pick(0, q) for q in queries] == exact
    for wrong in (0, 9):
        with pytest.raises(ValueError, match="nprobe"):
            tuned.set_nprobe(wrong)
