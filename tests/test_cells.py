"""Keyed-sample cell search: after any insert/delete sequence it answers every query like a
fresh build of the surviving set, ties included."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_erase.core.buckets import BucketIndex
from langchain_erase.core.cells import CellIndex, exact_dot
from langchain_erase.core.hashing import id_hash64
from langchain_erase.core.projection import normalize_rows

DIM = 8
SMALL = {"cells": 3, "nprobe": 2, "exact_below": 6}


def fresh(vectors: dict[str, np.ndarray], **options: int) -> CellIndex:
    index = CellIndex(DIM, salt=5, **options)
    ids = sorted(vectors)
    rows = np.array([vectors[i] for i in ids], dtype=np.float32).reshape(len(ids), DIM)
    index.build(ids, id_hash64(0, ids).tolist(), rows)
    return index


def structure(index: CellIndex) -> object:
    if index._flat is not None:
        return ("flat", sorted(index._flat.ids))
    return ("cells", sorted(index._centers.ids), dict(sorted(index._cell_of.items())))


def exact_best(vectors: dict[str, np.ndarray], query: np.ndarray) -> str:
    q64 = query.astype(np.float64)
    return min((-exact_dot(v, q64), i) for i, v in vectors.items())[1]


@st.composite
def histories(draw: st.DrawFn) -> tuple[np.ndarray, list[tuple[str, str, int]]]:
    pool = normalize_rows(np.random.default_rng(draw(st.integers(0, 99))).standard_normal((6, DIM)))
    ops: list[tuple[str, str, int]] = []
    alive: set[str] = set()
    for n in range(draw(st.integers(1, 40))):
        if alive and draw(st.integers(0, 2)) == 0:
            victim = draw(st.sampled_from(sorted(alive)))
            alive.discard(victim)
            ops.append(("delete", victim, 0))
        else:  # few distinct vectors: duplicates and exactly tied scores are common
            ops.append(("insert", f"x{n}", draw(st.integers(0, len(pool) - 1))))
            alive.add(f"x{n}")
    return pool, ops


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_in_place_changes_equal_a_fresh_build(history) -> None:  # type: ignore[no-untyped-def]
    pool, ops = history
    index = CellIndex(DIM, salt=5, **SMALL)
    vectors: dict[str, np.ndarray] = {}
    queries = [*pool, *normalize_rows(np.random.default_rng(1).standard_normal((4, DIM)))]
    for op, example_id, which in ops:
        if op == "insert":
            vectors[example_id] = pool[which]
            index.add(example_id, int(id_hash64(0, [example_id])[0]), pool[which])
        else:
            del vectors[example_id]
            index.remove(example_id, int(id_hash64(0, [example_id])[0]))
        built = fresh(vectors, **SMALL)
        assert structure(index) == structure(built)
        if vectors:
            for query in queries:
                q64 = query.astype(np.float64)
                assert index.best(query, q64) == built.best(query, q64)


def test_probing_every_cell_is_the_exact_scan_and_few_cells_find_most() -> None:
    rng = np.random.default_rng(3)
    vectors = normalize_rows(rng.standard_normal((3000, DIM)))
    data = {f"v{i}": v for i, v in enumerate(vectors)}
    full = fresh(data, cells=40, nprobe=40, exact_below=100)
    probe = fresh(data, cells=40, nprobe=8, exact_below=100)
    queries = normalize_rows(rng.standard_normal((200, DIM)))
    hits = 0
    for query in queries:
        q64 = query.astype(np.float64)
        truth = exact_best(data, query)
        assert full.best(query, q64) == truth
        hits += probe.best(query, q64) == truth
    assert hits >= 150  # an approximate search, but not a random one


def test_bucket_index_keeps_the_only_copy_and_zeroes_it_on_removal() -> None:
    rng = np.random.default_rng(4)
    ids = [f"m{i}" for i in range(60)]
    vectors = normalize_rows(rng.standard_normal((60, DIM)))
    labels = np.zeros(60, dtype=np.int64)
    index = BucketIndex.build(
        1, "similar", DIM, ids, labels, labels, vectors, cells=4, nprobe=2, exact_below=20
    )
    assert np.array_equal(index.vector("m7", 0), vectors[7])
    assert np.array_equal(index.vectors_of(["m9", "m7"]), vectors[[9, 7]])
    index.remove("m7", 0, 0)
    stored = b"".join(block.matrix.tobytes() for block in index.vector_blocks())
    assert vectors[7].tobytes() not in stored


def test_bucket_index_in_cell_mode_follows_deletions_and_insertions_exactly() -> None:
    rng = np.random.default_rng(6)
    base = normalize_rows(rng.standard_normal((15, DIM)))
    vectors = base[rng.integers(0, 15, 120)]  # duplicates: tied scores
    ids = [f"m{i:03d}" for i in range(120)]
    labels = (np.arange(120) % 2).astype(np.int64)
    options = {"seed": 3, "cells": 5, "nprobe": 2, "exact_below": 20}

    def built(alive: list[int]) -> BucketIndex:
        chosen = [ids[i] for i in alive]
        return BucketIndex.build(
            2, "similar", DIM, chosen, labels[alive], labels[alive], vectors[alive],
            id_hashes=id_hash64(3, chosen), **options,
        )  # fmt: skip

    index = built(list(range(120)))
    alive = list(range(120))
    queries = [*base, *normalize_rows(rng.standard_normal((5, DIM)))]
    for step, victim in enumerate(rng.permutation(120)[:90].tolist()):
        index.remove(ids[victim], int(labels[victim]), 0)
        alive.remove(victim)
        if step % 3 == 0:  # and put one back now and then
            index.add(ids[victim], int(labels[victim]), 0, vectors[victim])
            alive.append(victim)
        fresh_index = built(sorted(alive))
        assert [index.pick(0, q) for q in queries] == [fresh_index.pick(0, q) for q in queries]
